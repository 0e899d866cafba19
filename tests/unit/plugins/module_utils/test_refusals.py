# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Refusals remembered across runs: a refused credential is not sent to the same robot and user again.

Each ``_handshake.obtain`` call stands for a new run: the memory is the ``.refused`` file beside the
token cache entry, nothing held in the process. Robots are real gRPC+TLS servers on 127.0.0.1 whose
answers the tests script, so every request that reached a robot is counted.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.spot.auth.tests.unit.conftest import MINTED, PASSWORD, respond

from ansible_collections.spot.auth.plugins.module_utils import _handshake
from ansible_collections.spot.auth.plugins.module_utils._errors import (
    ExpiredApplicationTokenError, InvalidApplicationTokenError, InvalidLoginError, InvalidOptionError, InvalidTokenError,
    TemporarilyLockedOutError, error_from_result)
from ansible_collections.spot.auth.plugins.module_utils._options import AuthSettings, settings_from
from ansible_collections.spot.auth.plugins.module_utils._refusals import MAX_TTL, RefusalMemory

SERIAL = "spot-refusals-01"
WRONG = "Wrong-Pass-3e9d1b"
OTHER = "Other-Pass-51c07a"
APP_TOKEN = "app-Secret-a1b2c3"
OTHER_APP_TOKEN = "app-Secret-d4e5f6"
GIVEN_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.given-Secret-8f3e"
RECALLED = re.compile(r"refused at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC and not sent again before \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, "
                      r"unless a different credential is given")
LOCKED_OUT = re.compile(r"the user was locked out at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; no login is sent before \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")

REFUSAL_ANSWERS = [
    ("STATUS_INVALID_LOGIN", InvalidLoginError),
    ("STATUS_TEMPORARILY_LOCKED_OUT", TemporarilyLockedOutError),
    ("STATUS_INVALID_APPLICATION_TOKEN", InvalidApplicationTokenError),
    ("STATUS_EXPIRED_APPLICATION_TOKEN", ExpiredApplicationTokenError),
]


def refuse(status="STATUS_INVALID_LOGIN"):
    return respond(status=status, token=None)


def settings_for(robot, pki, tmp_path, **changes):
    ca_path = tmp_path / "ca.pem"
    if not ca_path.exists():
        ca_path.write_bytes(pki.roots)
    params = {"hostname": "127.0.0.1", "port": robot.port, "username": "admin", "password": PASSWORD, "ca_cert": str(ca_path),
              "serial": SERIAL, "token_cache": str(tmp_path / "cache"), "retries": 0, "timeout": 10}
    params.update(changes)
    return settings_from(params)


def record_path(settings):
    return settings.cache().refusal_path(settings.cache_entry)


def cache_files(tmp_path):
    directory = tmp_path / "cache"
    return {name: (directory / name).read_bytes() for name in os.listdir(str(directory))} if directory.exists() else {}


def refusals_in(path):
    with open(path, "rb") as handle:
        return json.loads(handle.read().decode("utf-8"))["refusals"]


def sent(robot, field="password"):
    return [getattr(request, field) for request in robot.requests]


def near_expiry_token(seconds_left=600):
    """A token the cache would re-mint (less than the one-hour margin left)."""
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    now = int(time.time())
    return "%s.%s.cached-Secret-6d2f" % (part({"alg": "ES256"}), part({"iat": now - 3600, "exp": now + seconds_left}))


class FakeClock:
    def __init__(self, now=None):
        self.now = time.time() if now is None else now

    def __call__(self):
        return self.now


@pytest.fixture
def clocked(monkeypatch):
    """A fake clock for the refusal memory every handshake of the test opens."""
    clock = FakeClock()

    def refusal_memory(settings):
        if not settings.token_cache or not settings.refusal_ttl:
            return None
        return RefusalMemory(settings.cache().refusal_path(settings.cache_entry), settings.refusal_ttl, clock=clock)

    monkeypatch.setattr(AuthSettings, "refusal_memory", refusal_memory)
    return clock


# -- the record ---------------------------------------------------------------------------------


def test_refusal_is_recorded_as_a_private_hash_and_answers_the_next_run(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse())
    settings = settings_for(robot, pki, tmp_path, password=WRONG)
    with pytest.raises(InvalidLoginError) as first:
        _handshake.obtain(settings)
    assert "not sent again" not in first.value.message
    files = cache_files(tmp_path)
    assert list(files) == ["%s.admin.refused" % SERIAL]  # no token entry, no temporary file
    path = record_path(settings)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600 and stat.S_ISREG(os.lstat(path).st_mode)
    raw = files["%s.admin.refused" % SERIAL]
    assert WRONG.encode() not in raw and PASSWORD.encode() not in raw
    assert base64.b64encode(WRONG.encode()) not in raw and WRONG.encode().hex().encode() not in raw
    [record] = refusals_in(path)
    assert record["error"]["error_type"] == "InvalidLoginError" and record["until"] - record["at"] == pytest.approx(3600)

    for _run in range(3):  # later runs: the memory answers, the robot is not asked
        with pytest.raises(InvalidLoginError) as again:
            _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG))
        assert RECALLED.search(again.value.message), again.value.message
        assert path in again.value.message and again.value.retryable is False
        assert WRONG not in again.value.message
    assert sent(robot) == [WRONG]


def test_record_without_a_serial_is_named_after_the_address(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse())
    settings = settings_for(robot, pki, tmp_path, password=WRONG, serial=None)
    with pytest.raises(InvalidLoginError):
        _handshake.obtain(settings)
    assert list(cache_files(tmp_path)) == ["127.0.0.1_%d.admin.refused" % robot.port]
    with pytest.raises(InvalidLoginError, match="not sent again before"):
        _handshake.obtain(settings)
    assert len(robot.requests) == 1


@pytest.mark.parametrize("status, error_class", REFUSAL_ANSWERS)
def test_every_refusal_is_recalled_with_its_own_type(robot_factory, pki, tmp_path, status, error_class):
    robot = robot_factory(refuse(status))
    settings = settings_for(robot, pki, tmp_path, password=WRONG, app_token=APP_TOKEN)
    with pytest.raises(error_class):
        _handshake.obtain(settings)
    with pytest.raises(error_class) as again:
        _handshake.obtain(settings)
    assert again.value.error_type == error_class.__name__  # the very class, not a subclass or a base
    assert (LOCKED_OUT if error_class is TemporarilyLockedOutError else RECALLED).search(again.value.message), again.value.message
    assert len(robot.requests) == 1
    raw = b"".join(cache_files(tmp_path).values())
    assert WRONG.encode() not in raw and APP_TOKEN.encode() not in raw


def test_a_different_password_is_sent_and_success_keeps_the_other_record(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse(), respond())
    with pytest.raises(InvalidLoginError):
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG))
    outcome = _handshake.obtain(settings_for(robot, pki, tmp_path, password=OTHER))
    assert outcome.method == "password" and outcome.token == MINTED
    assert sent(robot) == [WRONG, OTHER]
    # The success forgot nothing recorded against the wrong password; the cached token now answers, though.
    assert len(refusals_in(record_path(settings_for(robot, pki, tmp_path)))) == 1
    os.remove(str(tmp_path / "cache" / ("%s.admin.jwt" % SERIAL)))
    with pytest.raises(InvalidLoginError, match="not sent again"):
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG))
    assert sent(robot) == [WRONG, OTHER]


def test_records_are_per_robot_and_user(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse())
    with pytest.raises(InvalidLoginError):
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG))
    with pytest.raises(InvalidLoginError) as other_user:
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG, username="operator"))
    assert "not sent again" not in other_user.value.message
    with pytest.raises(InvalidLoginError) as other_robot:
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG, serial="spot-refusals-02"))
    assert "not sent again" not in other_robot.value.message
    assert [request.username for request in robot.requests] == ["admin", "operator", "admin"]
    assert sorted(cache_files(tmp_path)) == sorted(["%s.admin.refused" % SERIAL, "%s.operator.refused" % SERIAL,
                                                    "spot-refusals-02.admin.refused"])


# -- how long ---------------------------------------------------------------------------------


def test_a_refusal_stands_for_exactly_refusal_ttl(tmp_path):
    clock = FakeClock(1800000000.0)
    path = str(tmp_path / "robot.admin.refused")
    memory = RefusalMemory(path, 100, clock=clock)
    memory.record((WRONG, None), InvalidLoginError("the robot refused the username or password"))
    clock.now += 99.5
    with pytest.raises(InvalidLoginError, match=r"refused at 2027-01-15 08:00:00 UTC and not sent again before 2027-01-15 08:01:40 UTC"):
        memory.check((WRONG, None))
    memory.check((OTHER, None))  # another credential: no refusal
    clock.now += 0.5
    memory.check((WRONG, None))  # the ttl has passed
    memory.record((OTHER, None), InvalidLoginError("refused"))
    assert len(refusals_in(path)) == 1  # the expired record was dropped when the file was next written


def test_refusal_ttl_of_one_second_sends_again_after_it(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse())
    settings = settings_for(robot, pki, tmp_path, password=WRONG, refusal_ttl=1)
    with pytest.raises(InvalidLoginError):
        _handshake.obtain(settings)
    with pytest.raises(InvalidLoginError, match="not sent again"):
        _handshake.obtain(settings)
    assert len(robot.requests) == 1
    time.sleep(1.2)
    with pytest.raises(InvalidLoginError) as after:
        _handshake.obtain(settings)
    assert "not sent again" not in after.value.message
    assert sent(robot) == [WRONG, WRONG]


def test_refusal_ttl_zero_records_nothing_and_sends_every_time(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse())
    for _run in range(3):
        with pytest.raises(InvalidLoginError) as refused:
            _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG, refusal_ttl=0))
        assert "not sent again" not in refused.value.message
    assert sent(robot) == [WRONG] * 3
    assert cache_files(tmp_path) == {}


def test_refusal_ttl_zero_ignores_an_earlier_record(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse())
    with pytest.raises(InvalidLoginError):
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG))
    with pytest.raises(InvalidLoginError) as refused:
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG, refusal_ttl=0))
    assert "not sent again" not in refused.value.message
    assert sent(robot) == [WRONG, WRONG]


def test_lockout_blocks_every_credential_for_60_seconds_then_allows(robot_factory, pki, tmp_path, clocked):
    robot = robot_factory(refuse("STATUS_TEMPORARILY_LOCKED_OUT"), respond())
    with pytest.raises(TemporarilyLockedOutError):
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG))
    for password in (WRONG, OTHER, PASSWORD):
        with pytest.raises(TemporarilyLockedOutError) as blocked:
            _handshake.obtain(settings_for(robot, pki, tmp_path, password=password))
        assert LOCKED_OUT.search(blocked.value.message), blocked.value.message
    with pytest.raises(TemporarilyLockedOutError, match="locked out at"):  # every credential of the user
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=None, token=GIVEN_TOKEN))
    assert sent(robot) == [WRONG]
    clocked.now += 59.0
    with pytest.raises(TemporarilyLockedOutError):
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=PASSWORD))
    clocked.now += 1.5
    outcome = _handshake.obtain(settings_for(robot, pki, tmp_path, password=PASSWORD))
    assert outcome.method == "password" and sent(robot) == [WRONG, PASSWORD]
    assert refusals_in(record_path(settings_for(robot, pki, tmp_path))) == []  # the success dropped the lockout


def test_success_forgets_records_against_the_credential_and_the_lockout(tmp_path):
    clock = FakeClock()
    path = str(tmp_path / "robot.admin.refused")
    memory = RefusalMemory(path, 3600, clock=clock)
    memory.record((WRONG, None), InvalidLoginError("refused"))
    memory.record((OTHER, APP_TOKEN), InvalidLoginError("refused"))
    memory.record((PASSWORD, None), TemporarilyLockedOutError("locked"))
    with pytest.raises(TemporarilyLockedOutError):
        memory.check((PASSWORD, None))
    memory.forget((OTHER, APP_TOKEN))
    memory.check((OTHER, APP_TOKEN))
    memory.check((PASSWORD, None))  # the lockout is gone with the success
    with pytest.raises(InvalidLoginError):
        memory.check((WRONG, None))
    assert len(refusals_in(path)) == 1


def test_success_after_expiry_forgets_the_record(robot_factory, pki, tmp_path, clocked):
    robot = robot_factory(refuse(), respond())
    with pytest.raises(InvalidLoginError):
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=OTHER))
    clocked.now += 3600
    outcome = _handshake.obtain(settings_for(robot, pki, tmp_path, password=OTHER))  # the password was fixed on the robot
    assert outcome.method == "password" and sent(robot) == [OTHER, OTHER]
    assert refusals_in(record_path(settings_for(robot, pki, tmp_path))) == []


# -- tokens and application tokens --------------------------------------------------------------


def test_a_given_token_that_is_refused_is_recorded(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse("STATUS_INVALID_TOKEN"), respond())
    settings = settings_for(robot, pki, tmp_path, password=None, token=GIVEN_TOKEN)
    with pytest.raises(InvalidTokenError):
        _handshake.obtain(settings)
    with pytest.raises(InvalidTokenError, match="not sent again"):
        _handshake.obtain(settings)
    assert sent(robot, "token") == [GIVEN_TOKEN]
    assert b"given-Secret" not in b"".join(cache_files(tmp_path).values())
    outcome = _handshake.obtain(settings_for(robot, pki, tmp_path, password=None, token=MINTED))  # another token is sent
    assert outcome.method == "token" and sent(robot, "token") == [GIVEN_TOKEN, MINTED]


def test_a_cached_token_refused_on_re_mint_is_not_recorded_and_the_password_follows(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse("STATUS_INVALID_TOKEN"), respond())
    settings = settings_for(robot, pki, tmp_path)
    cached = near_expiry_token()
    settings.cache().write(settings.cache_entry, cached)
    outcome = _handshake.obtain(settings)
    assert outcome.method == "password" and [(r.token, r.password) for r in robot.requests] == [(cached, ""), ("", PASSWORD)]
    assert not os.path.exists(record_path(settings)) or refusals_in(record_path(settings)) == []


def test_a_cached_token_refused_without_a_password_is_sent_again_next_run(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse("STATUS_INVALID_TOKEN"))
    settings = settings_for(robot, pki, tmp_path, password=None, token=GIVEN_TOKEN)
    cached = near_expiry_token()
    settings.cache().write(settings.cache_entry, cached)
    for _run in range(2):
        with pytest.raises(InvalidTokenError) as refused:
            _handshake.obtain(settings)
        assert "not sent again" not in refused.value.message
    assert sent(robot, "token") == [cached, cached]
    assert not os.path.exists(record_path(settings)) or refusals_in(record_path(settings)) == []


def test_the_application_token_is_part_of_the_credential(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse("STATUS_INVALID_APPLICATION_TOKEN"), respond())
    with pytest.raises(InvalidApplicationTokenError):
        _handshake.obtain(settings_for(robot, pki, tmp_path, app_token=APP_TOKEN))
    with pytest.raises(InvalidApplicationTokenError, match="not sent again"):
        _handshake.obtain(settings_for(robot, pki, tmp_path, app_token=APP_TOKEN))
    outcome = _handshake.obtain(settings_for(robot, pki, tmp_path, app_token=OTHER_APP_TOKEN))
    assert outcome.method == "password"
    assert [(r.password, r.application_token) for r in robot.requests] == [(PASSWORD, APP_TOKEN), (PASSWORD, OTHER_APP_TOKEN)]
    raw = b"".join(cache_files(tmp_path).values())
    assert APP_TOKEN.encode() not in raw and PASSWORD.encode() not in raw


def test_a_password_without_an_application_token_is_another_credential(robot_factory, pki, tmp_path):
    robot = robot_factory(refuse())
    with pytest.raises(InvalidLoginError):
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG, app_token=APP_TOKEN))
    with pytest.raises(InvalidLoginError) as without:
        _handshake.obtain(settings_for(robot, pki, tmp_path, password=WRONG))
    assert "not sent again" not in without.value.message and len(robot.requests) == 2


# -- the file -----------------------------------------------------------------------------------

NOT_OURS = [
    b"not json at all",
    b"\xff\xfe\x00garbage",
    b"[]",
    b"null",
    b'"a string"',
    b'{"salt": 5, "refusals": []}',
    b'{"salt": "not hex", "refusals": []}',
    b'{"salt": "00", "refusals": {"digest": "*"}}',
    b'{"salt": "00", "refusals": [1, "x", null, {"digest": 5, "at": 0, "until": 9e9, "error": {}}]}',
    b'{"salt": "00", "refusals": [{"digest": "*", "at": true, "until": true, "error": {}}]}',
    b'{"salt": "00", "refusals": [{"digest": "*", "at": "0", "until": "9999999999", "error": {}}]}',
    b'{"salt": "00", "refusals": [{"digest": "*", "at": 0, "until": 9999999999, "error": "locked"}]}',
    b'{"salt": "00", "refusals": []}' + b" " * (70 * 1024),
]
# Numbers that parse as JSON but are no time: treated as no record, like any other foreign content.
NOT_A_TIME = [
    b'{"salt": "00", "refusals": [{"digest": "*", "at": NaN, "until": Infinity, "error": {}}]}',
    b'{"salt": "00", "refusals": [{"digest": "*", "at": 0, "until": 1e300, "error": {}}]}',
]


def write_private(path, content):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)


@pytest.mark.parametrize("content", NOT_OURS + NOT_A_TIME, ids=["not-ours-%d" % n for n in range(len(NOT_OURS))]
                         + ["nan-infinity", "year-beyond-time_t"])
def test_a_file_we_do_not_understand_is_treated_as_empty_and_replaced(robot_factory, pki, tmp_path, content):
    robot = robot_factory(refuse())
    settings = settings_for(robot, pki, tmp_path, password=WRONG)
    write_private(record_path(settings), content)
    with pytest.raises(InvalidLoginError) as first:
        _handshake.obtain(settings)
    assert "not sent again" not in first.value.message and "locked out" not in first.value.message
    assert len(robot.requests) == 1
    [record] = refusals_in(record_path(settings))  # replaced by a well-formed file
    assert record["error"]["error_type"] == "InvalidLoginError"
    with pytest.raises(InvalidLoginError, match="not sent again"):
        _handshake.obtain(settings)
    assert len(robot.requests) == 1


@pytest.mark.parametrize("how", ["symlink", "mode 0644", "fifo", "directory"])
def test_a_record_file_that_is_not_private_costs_a_warning_not_the_handshake(robot_factory, pki, tmp_path, how):
    robot = robot_factory(respond())
    settings = settings_for(robot, pki, tmp_path)
    path = record_path(settings)
    target = tmp_path / "elsewhere.json"
    target.write_bytes(b'{"salt": "00", "refusals": []}')
    os.chmod(str(target), 0o600)
    if how == "symlink":
        os.symlink(str(target), path)
    elif how == "fifo":
        os.mkfifo(path, 0o600)
    elif how == "directory":
        os.mkdir(path, 0o700)
    else:
        write_private(path, b'{"salt": "00", "refusals": []}')
        os.chmod(path, 0o644)
    before = os.lstat(path)
    outcome = _handshake.obtain(settings)
    assert outcome.method == "password" and outcome.token == MINTED
    assert any(path in warning for warning in outcome.warnings), outcome.warnings
    assert all(PASSWORD not in warning for warning in outcome.warnings)
    after = os.lstat(path)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)  # left as it was
    assert target.read_bytes() == b'{"salt": "00", "refusals": []}'


@pytest.mark.parametrize("how", ["symlink", "mode 0644"])
def test_a_refusal_with_an_unusable_record_file_is_still_the_robots_answer(robot_factory, pki, tmp_path, how):
    robot = robot_factory(refuse())
    settings = settings_for(robot, pki, tmp_path, password=WRONG)
    path = record_path(settings)
    target = tmp_path / "elsewhere.json"
    target.write_bytes(b"{}")
    os.chmod(str(target), 0o600)
    if how == "symlink":
        os.symlink(str(target), path)
    else:
        write_private(path, b"{}")
        os.chmod(path, 0o644)
    for _run in range(2):  # without the memory, each run asks the robot
        with pytest.raises(InvalidLoginError) as refused:
            _handshake.obtain(settings)
        assert "not sent again" not in refused.value.message
    assert sent(robot) == [WRONG, WRONG]
    assert target.read_bytes() == b"{}"


# -- concurrency --------------------------------------------------------------------------------


def test_threads_recording_at_once_lose_no_record(tmp_path):
    path = str(tmp_path / "robot.admin.refused")
    barrier = threading.Barrier(8)
    errors = []

    def record(index):
        try:
            barrier.wait(10)
            RefusalMemory(path, 3600).record(("password-%d" % index, None), InvalidLoginError("refused"))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and not any(thread.is_alive() for thread in threads)
    assert len(refusals_in(path)) == 8
    for index in range(8):
        with pytest.raises(InvalidLoginError):
            RefusalMemory(path, 3600).check(("password-%d" % index, None))
    RefusalMemory(path, 3600).check(("password-8", None))


CHILD = """
import sys, time
from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidLoginError
from ansible_collections.spot.auth.plugins.module_utils._refusals import RefusalMemory
path, index, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
for round in range(3):
    RefusalMemory(path, 3600).record(("password-%s-%d" % (index, round), None), InvalidLoginError("refused"))
"""


def test_processes_recording_at_once_lose_no_record(tmp_path):
    path = str(tmp_path / "robot.admin.refused")
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(entry for entry in sys.path if entry))
    start = time.time() + 2.0  # every child waits for the same moment
    children = [subprocess.Popen([sys.executable, "-c", CHILD, path, str(index), repr(start)], env=environ)
                for index in range(8)]
    assert [child.wait(60) for child in children] == [0] * 8
    assert len(refusals_in(path)) == 24
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for index in range(8):
        for round_ in range(3):
            with pytest.raises(InvalidLoginError):
                RefusalMemory(path, 3600).check(("password-%d-%d" % (index, round_), None))


def test_records_are_bounded_in_number(tmp_path):
    path = str(tmp_path / "robot.admin.refused")
    memory = RefusalMemory(path, 3600)
    for index in range(40):
        memory.record(("password-%d" % index, None), InvalidLoginError("refused"))
    assert len(refusals_in(path)) == 32
    memory.check(("password-0", None))  # the oldest gave way
    with pytest.raises(InvalidLoginError):
        memory.check(("password-39", None))


def test_errors_that_are_not_refusals_are_not_recorded(tmp_path):
    path = str(tmp_path / "robot.admin.refused")
    memory = RefusalMemory(path, 3600)
    memory.record((WRONG, None), error_from_result({"error_type": "UnavailableError", "msg": "down"}))
    memory.record((WRONG, None), InvalidOptionError("password", "bad"))
    assert not os.path.exists(path)


# -- the option -----------------------------------------------------------------------------------


def options(**changes):
    params = {"hostname": "robot.example", "username": "admin", "password": PASSWORD, "token_cache": "/nonexistent/cache"}
    params.update(changes)
    return settings_from(params)


@pytest.mark.parametrize("value, expected", [(None, 3600), (0, 0), (1, 1), (MAX_TTL, MAX_TTL), ("60", 60), ("0", 0)])
def test_refusal_ttl_accepted_values(value, expected):
    assert options(refusal_ttl=value).refusal_ttl == expected


@pytest.mark.parametrize("value", [True, False, -1, "-1", MAX_TTL + 1, str(MAX_TTL + 1), "abc", "", "1.5", 1.5, 60.0, float("nan"),
                                   float("inf"), [60], {"seconds": 60}, "60s"])
def test_refusal_ttl_refused_values(value):
    with pytest.raises(InvalidOptionError) as refused:
        options(refusal_ttl=value)
    assert refused.value.option == "refusal_ttl"
