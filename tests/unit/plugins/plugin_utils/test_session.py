# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run's session over real gRPC+TLS robots on 127.0.0.1: memory, coalescing, bounds, the agent."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from ansible_collections.spot.auth.plugins.module_utils import _errors, _options
from ansible_collections.spot.auth.plugins.plugin_utils import _agent
from ansible_collections.spot.auth.plugins.plugin_utils._run_memory import RunMemory
from ansible_collections.spot.auth.plugins.plugin_utils._session import Session
from ansible_collections.spot.auth.tests.unit.conftest import MINTED, respond, sleeper


def settings_for(robot, pki, tmp_path, password=None, **extra):
    """Settings with a password of this test only: the agent lives as long as the test process."""
    ca_path = tmp_path / "ca.pem"
    if not ca_path.exists():
        ca_path.write_bytes(pki.roots)
    values = {"hostname": "127.0.0.1", "port": robot.port, "username": "admin", "ca_cert": str(ca_path),
              "password": password or "pw-%s" % uuid.uuid4().hex, "retries": 0, "timeout": 10}
    values.update(extra)
    return _options.settings_from(values)


class Gauge:
    """Wraps handlers to record the most requests any set of robots had in progress at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def slow(self, seconds, then):
        def handler(request, context):
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
            try:
                time.sleep(seconds)
                return then(request, context)
            finally:
                with self._lock:
                    self.now -= 1
        return handler


def test_identical_requests_from_many_threads_are_one_rpc(robot_factory, pki, tmp_path):
    robot = robot_factory(sleeper(0.3, respond()))
    settings = settings_for(robot, pki, tmp_path)
    session = Session()
    results = []
    threads = [threading.Thread(target=lambda: results.extend(session.obtain_many([settings]))) for _unused in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [result.token for result in results] == [MINTED] * 8
    assert len(robot.requests) == 1


def test_a_refused_password_is_answered_from_memory_and_never_sent_again(robot_factory, pki, tmp_path):
    robot = robot_factory(respond("STATUS_INVALID_LOGIN", token=None))
    settings = settings_for(robot, pki, tmp_path)
    session = Session()
    first, again, twice = session.obtain_many([settings, settings]) + session.obtain_many([settings])
    assert all(isinstance(error, _errors.InvalidLoginError) for error in (first, again, twice))
    assert "not sent again in this run" in twice.message and "not sent again" not in first.message
    assert len(robot.requests) == 1
    other = settings_for(robot, pki, tmp_path)  # another password for the same robot and user is sent
    assert isinstance(session.obtain_many([other])[0], _errors.InvalidLoginError)
    assert len(robot.requests) == 2


def test_a_lockout_is_remembered_for_its_60_seconds_only(robot_factory, pki, tmp_path):
    robot = robot_factory(respond("STATUS_TEMPORARILY_LOCKED_OUT", token=None))
    settings = settings_for(robot, pki, tmp_path)
    now = [1000.0]
    memory = RunMemory(clock=lambda: now[0])
    memory.remember(settings, error=Session().obtain_many([settings])[0])
    with pytest.raises(_errors.TemporarilyLockedOutError, match="not sent again"):
        memory.recall(settings)
    now[0] += 61
    assert memory.recall(settings) is None


def test_a_token_is_reused_while_fresh_only(robot_factory, pki, tmp_path):
    robot = robot_factory(respond())
    settings = settings_for(robot, pki, tmp_path, token_cache_margin=0)
    session = Session()
    assert session.obtain_many([settings])[0].method == "password"
    assert session.obtain_many([settings])[0].method == "session"
    assert len(robot.requests) == 1
    stale = settings_for(robot, pki, tmp_path, password=settings.password, token_cache_margin=43000)
    memory = RunMemory()
    memory.remember(stale, token=MINTED)
    assert memory.recall(stale) == MINTED  # 12 hours from now (not 2100, as it claims) is more than the margin
    at_most_12_hours = settings_for(robot, pki, tmp_path, password=settings.password, token_cache_margin=43200)
    memory.remember(at_most_12_hours, token=MINTED)
    assert memory.recall(at_most_12_hours) is None
    soon = "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjE3MDAwMDAwNjAsImlhdCI6MTcwMDAwMDAwMH0.sig"  # expired in 2023
    memory.remember(stale, token=soon)
    assert memory.recall(stale) is None


def test_concurrency_bounds_the_handshakes_of_one_call(robot_factory, pki, tmp_path):
    gauge = Gauge()
    robots = [robot_factory(gauge.slow(0.3, respond())) for _unused in range(6)]
    results = Session().obtain_many([settings_for(robot, pki, tmp_path) for robot in robots], concurrency=2)
    assert [result.token for result in results] == [MINTED] * 6
    assert gauge.most == 2


def test_the_session_bounds_every_call_together(robot_factory, pki, tmp_path):
    gauge = Gauge()
    robots = [robot_factory(gauge.slow(0.3, respond())) for _unused in range(8)]
    session = Session(slots=3)
    results = []
    parts = [[settings_for(robot, pki, tmp_path) for robot in part] for part in (robots[:4], robots[4:])]  # one CA file, written once
    calls = [threading.Thread(target=lambda part=part: results.extend(session.obtain_many(part, concurrency=10))) for part in parts]
    for call in calls:
        call.start()
    for call in calls:
        call.join(30)
    assert [result.token for result in results] == [MINTED] * 8
    assert gauge.most == 3


def test_the_agent_remembers_for_every_process_of_the_run(robot_factory, pki, tmp_path):
    robot = robot_factory(respond())
    settings = settings_for(robot, pki, tmp_path)
    assert _agent.ask([settings], 5)[0].method == "password"
    assert _agent.ask([settings], 5)[0].method == "session"
    assert len(robot.requests) == 1
    directory = _agent.session_directory()
    assert os.stat(directory).st_mode & 0o777 == 0o700
    assert os.stat(os.path.join(directory, _agent.SOCKET_NAME)).st_mode & 0o077 == 0


def agent_pid():
    """The pid of this test process's agent, found by the session directory in its command line."""
    directory = _agent.session_directory().encode()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    if directory in handle.read().split(b"\0"):
                        return int(name)
            except OSError:
                continue
    return None


def ask_until_the_robot_holds_it(robot, settings):
    """Ask the agent in a thread and return (thread, results) once ``robot`` has received the request."""
    results = []
    asking = threading.Thread(target=lambda: results.extend(_agent.ask([settings], 1)))
    asking.start()
    give_up = time.monotonic() + 10
    while not robot.requests and time.monotonic() < give_up:
        time.sleep(0.02)
    assert robot.requests, "the robot never received the request"
    return asking, results


def test_an_agent_killed_mid_request_is_a_session_error_and_the_next_request_starts_a_new_one(robot_factory, pki, tmp_path):
    robot = robot_factory(sleeper(3, respond()))
    settings = settings_for(robot, pki, tmp_path)
    _agent.ask([settings_for(robot_factory(respond()), pki, tmp_path)], 1)  # the agent is up
    asking, results = ask_until_the_robot_holds_it(robot, settings)
    os.kill(agent_pid(), signal.SIGKILL)
    asking.join(10)
    assert not asking.is_alive()
    assert isinstance(results[0], _errors.SessionError)
    assert "may have reached the robot" in results[0].message
    again = _agent.ask([settings_for(robot_factory(respond()), pki, tmp_path)], 1)
    assert again[0].token == MINTED


def test_a_token_got_without_verifying_the_robot_never_answers_a_request_that_verifies(robot_factory, pki, tmp_path):
    robot = robot_factory(respond(), certificate=pki.untrusted)
    unverified = settings_for(robot, pki, tmp_path, validate_certs=False)
    verified = settings_for(robot, pki, tmp_path, password=unverified.password)
    session = Session()
    assert session.obtain_many([unverified])[0].token == MINTED
    assert isinstance(session.obtain_many([verified])[0], _errors.CertificateVerificationError)
    assert session.obtain_many([unverified])[0].method == "session"


def test_an_agent_told_to_stop_mid_request_answers_it_before_it_exits(robot_factory, pki, tmp_path):
    robot = robot_factory(sleeper(2, respond()))
    settings = settings_for(robot, pki, tmp_path)
    _agent.ask([settings_for(robot_factory(respond()), pki, tmp_path)], 1)  # the agent is up
    pid = agent_pid()
    asking, results = ask_until_the_robot_holds_it(robot, settings)
    os.kill(pid, signal.SIGTERM)
    asking.join(30)
    assert not asking.is_alive()
    assert [result.token for result in results] == [MINTED]
    give_up = time.monotonic() + 10
    while agent_pid() == pid and time.monotonic() < give_up:
        time.sleep(0.05)
    assert agent_pid() != pid, "the agent exits once it answered"


def test_a_connection_queued_when_the_agent_stops_accepting_is_answered(robot_factory, pki, tmp_path):
    settings = settings_for(robot_factory(respond()), pki, tmp_path)
    directory = tmp_path / "session"
    directory.mkdir(mode=0o700)
    (directory / _agent.LOCK_NAME).touch(mode=0o600)
    path = str(directory / _agent.SOCKET_NAME)
    server = _agent._AgentServer(path, Session())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    serving.start()
    server.shutdown()  # the accept loop has stopped; the socket still listens, as while an agent exits
    asker = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    asker.settimeout(30)
    try:
        asker.connect(path)
        _agent.send_message(asker, {"version": _agent.PROTOCOL_VERSION, "concurrency": 1,
                                    "handshakes": [_agent.encode_settings(settings)]})
        _agent._stop_serving(server, str(directory), os.stat(path).st_ino)
        answer = _agent.receive_message(asker)
    finally:
        asker.close()
    assert [_agent.decode_result(item).token for item in answer["results"]] == [MINTED]
    assert not directory.exists()


ASKER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.spot.auth.plugins.module_utils._options import AuthSettings
from ansible_collections.spot.auth.plugins.plugin_utils import _agent
request = json.loads(sys.stdin.read())
result = _agent.ask([AuthSettings(**request["settings"])], 1, identity=tuple(request["identity"]))[0]
print(type(result).__name__)
"""


def agents_of(directory):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    arguments = handle.read().split(b"\0")
            except OSError:
                continue
            if directory.encode() in arguments:
                found.append(int(name))
    return found


def ask_from_processes(request, count):
    """What ``count`` separate processes, started at once, get from the run's agent."""
    askers = [subprocess.Popen([sys.executable, "-c", ASKER, _agent.collection_root()], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True) for _unused in range(count)]
    return [asker.communicate(request, timeout=60)[0].strip() for asker in askers]


def test_many_processes_asking_while_the_agent_exits_end_with_one_agent(robot_factory, pki, tmp_path):
    robot = robot_factory(respond())
    settings = settings_for(robot, pki, tmp_path)
    identity = _agent.run_identity()
    directory = _agent.session_directory(identity)
    assert _agent.ask([settings], 1)[0].token == MINTED
    (old,) = agents_of(directory)
    request = json.dumps({"settings": _agent.encode_settings(settings), "identity": identity})
    os.kill(old, signal.SIGTERM)
    # The exiting agent may still answer some of these (it notices SIGTERM within a second); the rest start a new one.
    assert ask_from_processes(request, 6) == ["Outcome"] * 6
    give_up = time.monotonic() + 10
    while old in agents_of(directory) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert old not in agents_of(directory), "the agent exits on SIGTERM"
    assert len(agents_of(directory)) <= 1, "at most one agent for the run, not several"
    # Whether or not one was started above, askers arriving together once it is gone end with exactly one.
    assert ask_from_processes(request, 6) == ["Outcome"] * 6
    assert len(agents_of(directory)) == 1, "one agent for the run, not several"
    assert _agent.ask([settings], 1)[0].method in ("password", "session")
