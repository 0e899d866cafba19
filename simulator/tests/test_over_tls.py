# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Behaviours and faults as a gRPC client sees them over TLS (simulator's own wire messages)."""

import socket
import time

import grpc
import pytest

from spot_auth_sim import tokens, wire
from spot_auth_sim.testing import Fleet, ManualClock, auth_channel, call_get_auth_token, get_auth_token

pytestmark = pytest.mark.timeout(60)


def login(robot, password=None, **kwargs):
    return get_auth_token(robot, username=robot.username,
                          password=robot.password if password is None else password, **kwargs)


def rpc_error(call):
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_login_and_remint_over_tls(fleet3):
    robot = fleet3["robot-001"]
    response = login(robot)
    assert response.status == wire.STATUS_OK
    assert response.header.error.code == wire.CODE_OK
    assert response.header.request_header.client_name == "spot-auth-sim-tests"
    assert response.header.response_timestamp.seconds >= response.header.request_received_timestamp.seconds > 0
    claims = tokens.decode_unverified(response.token)[1]
    assert claims["iss"] == robot.serial
    again = get_auth_token(robot, token=response.token)
    assert again.status == wire.STATUS_OK
    assert tokens.decode_unverified(again.token)[1]["exp"] > claims["exp"]
    # another robot rejects it
    assert get_auth_token(fleet3["robot-002"], token=response.token).status == wire.STATUS_INVALID_TOKEN


def test_authorization_metadata_is_ignored(fleet3):
    robot = fleet3[0]
    request = wire.build_request(username=robot.username, password=robot.password)
    with auth_channel(robot.port, robot.ca_pem) as channel:
        response = call_get_auth_token(channel, request, metadata=(("authorization", "Bearer None"),))
    assert response.status == wire.STATUS_OK


def test_certificate_names_every_bootstrap_authority(fleet3):
    robot = fleet3[0]
    for authority in ("auth.spot.robot", "id.spot.robot", "api.spot.robot", "payload-registration.spot.robot"):
        assert login(robot, authority=authority).status == wire.STATUS_OK


def test_invalid_request_and_statuses(fleet3):
    robot = fleet3[1]
    empty = get_auth_token(robot)
    assert empty.header.error.code == wire.CODE_INVALID_REQUEST
    assert login(robot, password="wrong").status == wire.STATUS_INVALID_LOGIN
    assert get_auth_token(robot, token="not-a-token").status == wire.STATUS_INVALID_TOKEN
    assert [r.outcome for r in robot.requests] == ["CODE_INVALID_REQUEST", "STATUS_INVALID_LOGIN",
                                                   "STATUS_INVALID_TOKEN"]


def test_password_change_on_running_robot(fleet3):
    robot = fleet3[2]
    old_password = robot.password
    token = login(robot).token
    robot.set_password(robot.username, "changed-at-runtime")
    assert login(robot, password=old_password).status == wire.STATUS_INVALID_LOGIN
    assert get_auth_token(robot, token=token).status == wire.STATUS_INVALID_TOKEN
    assert login(robot).status == wire.STATUS_OK  # robot.password follows the change


def test_lockout_and_expiry_with_manual_clock():
    clock = ManualClock()
    with Fleet(robots=1, clock=clock, rate_limit=0, lockout_seconds=60) as fleet:
        robot = fleet[0]
        for _attempt in range(6):
            assert login(robot, password="bad").status == wire.STATUS_INVALID_LOGIN
        assert login(robot).status == wire.STATUS_TEMPORARILY_LOCKED_OUT
        clock.advance(60)
        response = login(robot)
        assert response.status == wire.STATUS_OK
        clock.advance(43200)
        assert get_auth_token(robot, token=response.token).status == wire.STATUS_INVALID_TOKEN


def test_lockout_with_real_short_duration():
    with Fleet(robots=1, rate_limit=0, lockout_threshold=2, lockout_seconds=0.5) as fleet:
        robot = fleet[0]
        login(robot, password="bad")
        login(robot, password="bad")
        assert login(robot).status == wire.STATUS_TEMPORARILY_LOCKED_OUT
        time.sleep(0.6)
        assert login(robot).status == wire.STATUS_OK


def test_rate_limit_answers_429():
    with Fleet(robots=1, clock=ManualClock()) as fleet:  # time stands still: no refill
        robot = fleet[0]
        for _attempt in range(5):
            assert login(robot).status == wire.STATUS_OK
        error = rpc_error(lambda: login(robot))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error.details() == "Received http2 header with status: 429"
        assert "status: 429" in error.details()
        fleet.clock.advance(1)
        assert login(robot).status == wire.STATUS_OK


def test_latency_is_added():
    with Fleet(robots=1, latency_ms=300, rate_limit=0) as fleet:
        started = time.monotonic()
        login(fleet[0])
        assert time.monotonic() - started >= 0.3


def test_legacy_robot_over_the_wire():
    with Fleet(robots=2, legacy=["robot-2"], rate_limit=0) as fleet:
        modern, legacy = fleet[0], fleet[1]
        assert legacy.legacy and legacy.app_token == fleet.app_token
        assert login(legacy).status == wire.STATUS_INVALID_APPLICATION_TOKEN
        assert login(legacy, application_token="bogus").status == wire.STATUS_INVALID_APPLICATION_TOKEN
        assert login(legacy, application_token=fleet.expired_app_token).status == \
            wire.STATUS_EXPIRED_APPLICATION_TOKEN
        assert login(legacy, application_token=fleet.app_token).status == wire.STATUS_OK
        assert login(modern, application_token="bogus").status == wire.STATUS_OK
        assert legacy.requests[-1].app_token_present


# ---- faults --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def faulty():
    faults = {
        "robot-001": "down",
        "robot-002": "slow:1",
        "robot-003": "internal",
        "robot-004": "unknown",
        "robot-005": "unavailable",
        "robot-006": "flaky:2",
        "robot-007": "wrong-ca",
        "robot-008": "wrong-name",
        "robot-009": "ratelimited",
    }
    with Fleet(robots=10, faults=faults, rate_limit=0) as fleet:
        yield fleet


def test_fault_down_refuses_connections(faulty):
    robot = faulty["robot-001"]
    assert not robot.listening
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", robot.port)) != 0
    error = rpc_error(lambda: login(robot, timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "Connection refused" in error.details()


def test_fault_slow(faulty):
    robot = faulty["robot-002"]
    started = time.monotonic()
    error = rpc_error(lambda: login(robot, timeout=0.3))
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 0.9
    started = time.monotonic()
    assert login(robot, timeout=5).status == wire.STATUS_OK
    assert time.monotonic() - started >= 1.0


def test_fault_internal(faulty):
    response = login(faulty["robot-003"])
    assert response.header.error.code == wire.CODE_INTERNAL_SERVER_ERROR
    assert not response.token


def test_fault_unknown(faulty):
    response = login(faulty["robot-004"])
    assert response.header.error.code == wire.CODE_OK
    assert response.status == wire.STATUS_UNKNOWN


def test_fault_unavailable(faulty):
    for _attempt in range(3):
        assert rpc_error(lambda: login(faulty["robot-005"])).code() == grpc.StatusCode.UNAVAILABLE


def test_fault_flaky(faulty):
    robot = faulty["robot-006"]
    robot.reset()
    for _attempt in range(2):
        error = rpc_error(lambda: login(robot))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert "429" not in error.details()
    assert login(robot).status == wire.STATUS_OK
    assert [r.grpc_code for r in robot.requests] == ["UNAVAILABLE", "UNAVAILABLE", "OK"]


def test_fault_wrong_ca(faulty):
    error = rpc_error(lambda: login(faulty["robot-007"], timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in error.details()
    assert faulty["robot-007"].request_count == 0


def test_fault_wrong_name(faulty):
    error = rpc_error(lambda: login(faulty["robot-008"], timeout=5))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    # grpcio 1.85 says the first; older grpcio (1.60) the second
    assert "Hostname Verification Check failed" in error.details() or "is not in peer certificate" in error.details()


def test_fault_ratelimited(faulty):
    error = rpc_error(lambda: login(faulty["robot-009"]))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "status: 429" in error.details()


def test_healthy_robot_in_a_faulty_fleet(faulty):
    assert login(faulty["robot-010"]).status == wire.STATUS_OK
