# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The real Spot SDK (bosdyn-client) authenticates against the simulator over TLS."""

import pytest

from spot_auth_sim.testing import Fleet

bosdyn_client = pytest.importorskip("bosdyn.client")
from bosdyn.client import create_standard_sdk  # noqa: E402
from bosdyn.client.auth import (  # noqa: E402
    AuthClient,
    InvalidLoginError,
    InvalidTokenError,
    TemporarilyLockedOutError,
)
from bosdyn.client.exceptions import (  # noqa: E402
    InternalServerError,
    InvalidRequestError,
    TimedOutError,
    TooManyRequestsError,
    UnsetStatusError,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def fleet():
    faults = {"robot-003": "internal", "robot-004": "unknown", "robot-005": "ratelimited", "robot-006": "slow:1"}
    with Fleet(robots=6, faults=faults, rate_limit=0,
               lockout_threshold=3) as fleet:
        yield fleet


def sdk_robot(fleet, robot):
    sdk = create_standard_sdk("spot-auth-sim-test", cert_resource_glob=fleet.ca_path)
    sdk_robot = sdk.create_robot(robot.host)
    sdk_robot.update_secure_channel_port(robot.port)
    return sdk_robot


def auth_client(fleet, robot):
    return sdk_robot(fleet, robot).ensure_client(AuthClient.default_service_name)


def test_auth_and_auth_with_token(fleet):
    robot = fleet["robot-001"]
    client = auth_client(fleet, robot)
    token = client.auth(robot.username, robot.password, timeout=10)
    assert token.count(".") == 2
    newer = client.auth_with_token(token, timeout=10)
    assert newer and newer != token
    record = robot.requests[-2]
    assert record.kind == "password" and record.outcome == "STATUS_OK"
    assert record.client_name.startswith("spot-auth-sim-test")


def test_robot_authenticate(fleet):
    robot = fleet["robot-002"]
    with sdk_robot(fleet, robot) as spot:
        spot.authenticate(robot.username, robot.password, timeout=10)
        assert spot.user_token
        token = spot.user_token
        spot.authenticate_with_token(token, timeout=10)
        assert spot.user_token != token


def test_sdk_errors(fleet):
    robot = fleet["robot-001"]
    client = auth_client(fleet, robot)
    with pytest.raises(InvalidLoginError):
        client.auth(robot.username, "wrong", timeout=10)
    with pytest.raises(InvalidTokenError):
        client.auth_with_token("not.a.token", timeout=10)
    with pytest.raises(InvalidTokenError):
        client.auth_with_token(fleet["robot-002"].mint_token(), timeout=10)
    with pytest.raises(InvalidTokenError):
        client.auth_with_token(robot.mint_token(lifetime=-5), timeout=10)
    with pytest.raises(InvalidRequestError):
        client.auth("", "", timeout=10)


def test_sdk_lockout(fleet):
    robot = fleet["robot-002"]
    client = auth_client(fleet, robot)
    for _attempt in range(3):
        with pytest.raises(InvalidLoginError):
            client.auth(robot.username, "wrong", timeout=10)
    with pytest.raises(TemporarilyLockedOutError):
        client.auth(robot.username, robot.password, timeout=10)
    robot.reset(lockouts=True)
    assert client.auth(robot.username, robot.password, timeout=10)


def test_sdk_header_and_status_faults(fleet):
    internal, unknown = fleet["robot-003"], fleet["robot-004"]
    with pytest.raises(InternalServerError):
        auth_client(fleet, internal).auth(internal.username, internal.password, timeout=10)
    with pytest.raises(UnsetStatusError):
        auth_client(fleet, unknown).auth(unknown.username, unknown.password, timeout=10)


def test_sdk_transport_faults(fleet):
    limited, slow = fleet["robot-005"], fleet["robot-006"]
    with pytest.raises(TooManyRequestsError):
        auth_client(fleet, limited).auth(limited.username, limited.password, timeout=10)
    with pytest.raises(TimedOutError):
        auth_client(fleet, slow).auth(slow.username, slow.password, timeout=0.2)
