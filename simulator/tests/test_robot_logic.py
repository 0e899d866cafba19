# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One robot's auth rules, driven directly (no network) with a manual clock."""

import pytest

from spot_auth_sim import tokens, wire
from spot_auth_sim.robot import (
    FAULTS,
    RATE_LIMIT_DETAILS,
    ApplicationTokenAuthority,
    AuthSettings,
    ManualClock,
    SimRobot,
    User,
    parse_fault,
    parse_faults,
    robot_index,
)

pytestmark = pytest.mark.timeout(60)

PASSWORD = "correct horse"


def make_robot(clock=None, faults=(), legacy=False, app_tokens=None, serial="spot-sim-0001", **settings):
    settings.setdefault("rate_limit", 0)
    clock = clock or ManualClock()
    return SimRobot("robot-001", serial, [User("admin", PASSWORD), User("viewer", "view", ("read",))],
                    settings=AuthSettings(**settings), faults=faults, legacy=legacy,
                    app_tokens=app_tokens, clock=clock)


def login(robot, username="admin", password=PASSWORD, **kwargs):
    return robot.handle(wire.build_request(username=username, password=password, **kwargs))


def remint(robot, token, **kwargs):
    return robot.handle(wire.build_request(token=token, **kwargs))


def status(answer):
    assert answer.grpc_code == "OK"
    assert answer.response.header.error.code == wire.CODE_OK
    return wire.status_name(answer.response.status)


# ---- login and tokens ----------------------------------------------------------------------

def test_login_returns_a_token_with_the_documented_claims():
    clock = ManualClock(start=1_800_000_000)
    robot = make_robot(clock)
    answer = login(robot)
    assert status(answer) == "STATUS_OK"
    claims = tokens.verify(robot.public_key, answer.response.token)
    assert claims["iss"] == "spot-sim-0001"
    assert claims["sub"] == claims["username"] == "admin"
    assert claims["iat"] == 1_800_000_000
    assert claims["exp"] == 1_800_000_000 + 43200
    assert claims["per"] == ["*"]
    assert claims["pwg"] == 1
    header, _claims = tokens.decode_unverified(answer.response.token)
    assert header["alg"] == "ES256"


def test_permissions_per_user():
    robot = make_robot()
    claims = tokens.verify(robot.public_key, login(robot, "viewer", "view").response.token)
    assert claims["per"] == ["read"]


def test_wrong_password_and_unknown_user_are_invalid_login():
    robot = make_robot()
    assert status(login(robot, password="nope")) == "STATUS_INVALID_LOGIN"
    assert status(login(robot, username="ghost")) == "STATUS_INVALID_LOGIN"
    assert status(login(robot, username="", password="x")) == "STATUS_INVALID_LOGIN"


def test_response_header_echo_and_timestamps_without_secrets():
    clock = ManualClock(start=1_800_000_000.25)
    robot = make_robot(clock)
    request = wire.build_request(username="admin", password=PASSWORD, client_name="me", now=1_799_999_999.5)
    answer = robot.handle(request)
    header = answer.response.header
    assert header.request_header == request.header
    assert header.request_header.client_name == "me"
    assert wire.timestamp_seconds(header.request_received_timestamp) == pytest.approx(1_800_000_000.25)
    clock.advance(0.5)
    answer.finish(clock.time())
    assert wire.timestamp_seconds(header.response_timestamp) == pytest.approx(1_800_000_000.75)
    assert header.error.code == wire.CODE_OK
    assert not header.HasField("request")
    assert PASSWORD.encode() not in answer.response.SerializeToString()


def test_neither_password_nor_token_is_invalid_request():
    robot = make_robot()
    for request in (wire.build_request(), wire.build_request(username="admin")):
        answer = robot.handle(request)
        assert answer.response.header.error.code == wire.CODE_INVALID_REQUEST
        assert answer.response.status == wire.STATUS_UNKNOWN
        assert answer.outcome == "CODE_INVALID_REQUEST"


def test_remint_gives_a_later_expiry_even_in_the_same_second():
    clock = ManualClock(start=1_800_000_000)
    robot = make_robot(clock)
    first = login(robot).response.token
    second = remint(robot, first)
    assert status(second) == "STATUS_OK"
    exp1 = tokens.decode_unverified(first)[1]["exp"]
    exp2 = tokens.decode_unverified(second.response.token)[1]["exp"]
    assert exp2 > exp1
    clock.advance(3600)
    third = remint(robot, second.response.token)
    assert tokens.decode_unverified(third.response.token)[1]["exp"] == 1_800_003_600 + 43200


def test_expired_token_is_invalid():
    clock = ManualClock()
    robot = make_robot(clock, token_lifetime=10)
    token = login(robot).response.token
    clock.advance(9)
    assert status(remint(robot, token)) == "STATUS_OK"
    clock.advance(1)
    assert status(remint(robot, token)) == "STATUS_INVALID_TOKEN"
    assert status(remint(robot, robot.mint_token("admin", lifetime=-1))) == "STATUS_INVALID_TOKEN"


@pytest.mark.parametrize("junk", ["garbage", "a.b.c", "e30.e30.e30"])
def test_malformed_token_is_invalid(junk):
    assert status(remint(make_robot(), junk)) == "STATUS_INVALID_TOKEN"


def test_token_of_another_robot_is_invalid_even_with_the_same_serial():
    one, two = make_robot(), make_robot()
    assert status(remint(two, login(one).response.token)) == "STATUS_INVALID_TOKEN"
    other_serial = make_robot(serial="spot-sim-0002")
    assert status(remint(other_serial, login(one).response.token)) == "STATUS_INVALID_TOKEN"


def test_password_change_revokes_older_tokens():
    robot = make_robot()
    old = login(robot).response.token
    assert robot.set_password("admin", "new password") == 2
    assert status(remint(robot, old)) == "STATUS_INVALID_TOKEN"
    assert status(login(robot)) == "STATUS_INVALID_LOGIN"
    fresh = login(robot, password="new password").response.token
    assert status(remint(robot, fresh)) == "STATUS_OK"
    assert tokens.decode_unverified(fresh)[1]["pwg"] == 2


def test_set_password_unknown_user_needs_create():
    robot = make_robot()
    with pytest.raises(KeyError):
        robot.set_password("newbie", "pw")
    robot.set_password("newbie", "pw", create=True)
    assert status(login(robot, "newbie", "pw")) == "STATUS_OK"
    with pytest.raises(ValueError):
        robot.set_password("admin", "")


def test_user_repr_hides_password():
    assert PASSWORD not in repr(User("admin", PASSWORD))


# ---- lockout -------------------------------------------------------------------------------

def test_six_failures_lock_the_user_for_sixty_seconds():
    clock = ManualClock()
    robot = make_robot(clock)
    for _attempt in range(6):
        assert status(login(robot, password="bad")) == "STATUS_INVALID_LOGIN"
    assert status(login(robot)) == "STATUS_TEMPORARILY_LOCKED_OUT"  # even the right password
    assert robot.lockout_status("admin")["locked"]
    assert status(login(robot, "viewer", "view")) == "STATUS_OK"  # other users unaffected
    clock.advance(59.9)
    assert status(login(robot, password="bad")) == "STATUS_TEMPORARILY_LOCKED_OUT"
    clock.advance(0.1)  # attempts while locked did not extend the lock
    assert status(login(robot)) == "STATUS_OK"


def test_failures_after_expiry_count_from_zero():
    clock = ManualClock()
    robot = make_robot(clock, lockout_seconds=5)
    for _attempt in range(6):
        login(robot, password="bad")
    clock.advance(5)
    for _attempt in range(5):
        assert status(login(robot, password="bad")) == "STATUS_INVALID_LOGIN"
    assert status(login(robot)) == "STATUS_OK"


def test_success_resets_the_failure_count():
    robot = make_robot()
    for _attempt in range(5):
        login(robot, password="bad")
    assert robot.lockout_status("admin")["failures"] == 5
    assert status(login(robot)) == "STATUS_OK"
    for _attempt in range(5):
        assert status(login(robot, password="bad")) == "STATUS_INVALID_LOGIN"
    assert status(login(robot)) == "STATUS_OK"


def test_lockout_is_configurable_and_can_be_disabled():
    robot = make_robot(lockout_threshold=2)
    login(robot, password="bad")
    login(robot, password="bad")
    assert status(login(robot)) == "STATUS_TEMPORARILY_LOCKED_OUT"
    robot.reset(lockouts=True)
    assert status(login(robot)) == "STATUS_OK"
    never = make_robot(lockout_threshold=0)
    for _attempt in range(20):
        login(never, password="bad")
    assert status(login(never)) == "STATUS_OK"


def test_unknown_usernames_lock_too_and_token_remint_is_not_blocked():
    robot = make_robot()
    token = login(robot).response.token
    for _attempt in range(6):
        login(robot, username="ghost", password="bad")
    assert status(login(robot, username="ghost", password="bad")) == "STATUS_TEMPORARILY_LOCKED_OUT"
    for _attempt in range(6):
        login(robot, password="bad")
    assert status(remint(robot, token)) == "STATUS_OK"


# ---- rate limit ----------------------------------------------------------------------------

def test_rate_limit_token_bucket():
    clock = ManualClock()
    robot = make_robot(clock, rate_limit=5)
    answers = [login(robot) for _attempt in range(6)]
    assert [a.grpc_code for a in answers] == ["OK"] * 5 + ["UNAVAILABLE"]
    assert answers[-1].details == RATE_LIMIT_DETAILS
    assert answers[-1].outcome == "RATE_LIMITED"
    clock.advance(0.2)
    assert login(robot).grpc_code == "OK"
    assert login(robot).grpc_code == "UNAVAILABLE"
    clock.advance(10)
    assert [login(robot).grpc_code for _attempt in range(6)] == ["OK"] * 5 + ["UNAVAILABLE"]


def test_rate_limited_requests_do_not_count_as_failed_logins():
    clock = ManualClock()
    robot = make_robot(clock, rate_limit=1)
    for _attempt in range(20):
        login(robot, password="bad")
    assert robot.lockout_status("admin")["failures"] == 1


# ---- legacy robots -------------------------------------------------------------------------

def test_legacy_robot_demands_an_application_token():
    clock = ManualClock()
    authority = ApplicationTokenAuthority(clock)
    robot = make_robot(clock, legacy=True, app_tokens=authority)
    good = authority.issue()
    expired = authority.issue(issued_at=clock.time() - 100, lifetime=50)
    assert status(login(robot)) == "STATUS_INVALID_APPLICATION_TOKEN"
    assert status(login(robot, application_token="junk")) == "STATUS_INVALID_APPLICATION_TOKEN"
    assert status(login(robot, application_token=ApplicationTokenAuthority(clock).issue())) == \
        "STATUS_INVALID_APPLICATION_TOKEN"
    assert status(login(robot, application_token=expired)) == "STATUS_EXPIRED_APPLICATION_TOKEN"
    answer = login(robot, application_token=good)
    assert status(answer) == "STATUS_OK"
    assert status(remint(robot, answer.response.token)) == "STATUS_INVALID_APPLICATION_TOKEN"
    assert status(remint(robot, answer.response.token, application_token=good)) == "STATUS_OK"
    assert robot.lockout_status("admin")["failures"] == 0  # app-token failures are not login failures
    clock.advance(400 * 86400)
    assert status(login(robot, application_token=good)) == "STATUS_EXPIRED_APPLICATION_TOKEN"


def test_modern_robot_ignores_field_5():
    robot = make_robot()
    assert status(login(robot, application_token="whatever")) == "STATUS_OK"


# ---- records -------------------------------------------------------------------------------

def test_records_describe_requests_without_secrets():
    robot = make_robot()
    token = login(robot, client_name="ansible").response.token
    remint(robot, token)
    robot.handle(wire.build_request(disable_rpc_logging=False))
    login(robot, password="bad", application_token="app-secret")
    records = robot.requests
    assert robot.request_count == 4
    assert [r.kind for r in records] == ["password", "token", "none", "password"]
    assert [r.outcome for r in records] == ["STATUS_OK", "STATUS_OK", "CODE_INVALID_REQUEST", "STATUS_INVALID_LOGIN"]
    assert records[0].client_name == "ansible"
    assert records[0].disable_rpc_logging and not records[2].disable_rpc_logging
    assert records[1].username == "admin"  # from the token
    assert [r.app_token_present for r in records] == [False, False, False, True]
    text = repr(records) + repr([r.as_dict() for r in records])
    for secret in (PASSWORD, token, "app-secret", "bad"):
        assert secret not in text
    robot.reset()
    assert robot.request_count == 0 and robot.requests == []


def test_record_limit_keeps_the_newest():
    robot = make_robot(record_limit=3)
    for _attempt in range(5):
        login(robot)
    assert robot.request_count == 5
    assert [r.index for r in robot.requests] == [3, 4, 5]


# ---- faults (logic part; the transport faults are tested over TLS) ---------------------------

def test_fault_table_and_parsing():
    assert set(FAULTS) == {"down", "slow", "internal", "unknown", "unavailable", "flaky", "wrong-ca",
                           "wrong-name", "ratelimited"}
    assert parse_fault("flaky:3").param == 3
    assert parse_fault("slow:1.5").param == 1.5
    assert str(parse_fault("flaky:3")) == "flaky:3"
    assert [str(f) for f in parse_faults("slow, flaky:1")] == ["slow", "flaky:1"]
    for bad in ("nope", "down:1", "flaky:x", "flaky:-1", ""):
        with pytest.raises(ValueError):
            parse_fault(bad)
    with pytest.raises(ValueError):
        parse_faults(["wrong-ca", "wrong-name"])
    assert robot_index("robot-003") == robot_index("robot-3") == robot_index("3") == 3
    assert robot_index("spot-a") is None


def test_flaky_fails_the_first_k_calls():
    robot = make_robot(faults=["flaky:3"])
    codes = [login(robot).grpc_code for _attempt in range(5)]
    assert codes == ["UNAVAILABLE"] * 3 + ["OK"] * 2
    assert robot.requests[0].fault == "flaky:3"
    robot.reset()
    assert login(robot).grpc_code == "UNAVAILABLE"


def test_slow_and_latency_add_delay():
    assert login(make_robot(faults=["slow"], slow_seconds=2)).delay == pytest.approx(2)
    assert login(make_robot(faults=["slow:0.5"])).delay == pytest.approx(0.5)
    assert login(make_robot(latency_ms=150)).delay == pytest.approx(0.15)


def test_header_and_status_faults():
    internal = login(make_robot(faults=["internal"]))
    assert internal.response.header.error.code == wire.CODE_INTERNAL_SERVER_ERROR
    unknown = login(make_robot(faults=["unknown"]))
    assert unknown.response.header.error.code == wire.CODE_OK
    assert unknown.response.status == wire.STATUS_UNKNOWN
    limited = login(make_robot(faults=["ratelimited"]))
    assert (limited.grpc_code, limited.details) == ("UNAVAILABLE", RATE_LIMIT_DETAILS)
    assert login(make_robot(faults=["unavailable"])).grpc_code == "UNAVAILABLE"


def test_settings_validation():
    with pytest.raises(ValueError):
        AuthSettings(rate_limit=-1).validate()
    with pytest.raises(ValueError):
        AuthSettings(token_lifetime=0).validate()
    with pytest.raises(ValueError):
        SimRobot("r", "s", [], settings=AuthSettings())
