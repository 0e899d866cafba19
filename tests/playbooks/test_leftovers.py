# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What interrupted runs leave in TMPDIR and in a token cache, and what the next run removes.

``validate_certs: false`` handshakes go through a relay whose directory,
``$TMPDIR/spot-auth-relay-<pid>-<start ticks>-XXXX``, lives in the run's session agent. Every run gets
a short TMPDIR of its own test, so what is found there is the test's own. A slow simulated robot
keeps the handshake going while a test signals ansible-playbook. Every wait is bounded, and every
process a test starts is ended by its pid.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest
from helpers import login_play, playbook_environment
from processes import alive, descendants, kill_quietly, processes, spot_auth_entries, start_ticks, wait_until
from spot_auth_sim.testing import JWT_SHAPE

UID = os.getuid()
AGENT_MARKER = b"plugin_utils._agent"
RELAY_NAME = re.compile(r"^spot-auth-relay-(\d+)-(\d+)-")
START_SECONDS = 60  # for ansible-playbook to start and its agent to reach the robot
GONE_SECONDS = 20  # for a signalled run, its workers and its agent to end
RUN_SECONDS = 180  # for a whole run
# The robot answers after this long: longer than every wait of a test, so a relay directory that is gone
# was removed when its process ended, not when the handshake finished.
SLOW_SECONDS = 240
UNVERIFIED = "{validate_certs: false, timeout: 300, retries: 0}"


# -- processes and directories -------------------------------------------------------------------


def agents_under(tmpdir):
    """pids of the session agents whose directory is in ``tmpdir`` (their command line names it)."""
    directory = os.path.join(str(tmpdir), "spot-auth-%d" % UID).encode()
    return sorted(pid for pid, (_ppid, cmdline) in processes().items()
                  if AGENT_MARKER in cmdline and any(arg.startswith(directory + b"/") for arg in cmdline.split(b"\0")))


def relay_dirs(tmpdir):
    return sorted(name for name in os.listdir(str(tmpdir)) if name.startswith("spot-auth-relay-"))


def age(path, seconds):
    moment = time.time() - seconds
    os.utime(str(path), (moment, moment))


def check_no_secret(text, secrets):
    assert not [secret for secret in secrets if secret and secret in text], "a secret appears in the output"
    assert JWT_SHAPE.search(text) is None, "a token appears in the output"


class BackgroundRun:
    """An ansible-playbook run started with Popen, so a test can signal it mid-handshake."""

    def __init__(self, tmp_path, playbook, inventory, tmpdir, secrets, number):
        path = tmp_path / ("background%d.yml" % number)
        path.write_text(textwrap.dedent(playbook))
        self.output_path = tmp_path / ("background-output%d.txt" % number)
        results = tmp_path / ("background-results%d.json" % number)
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-vvvv", "-i", str(inventory), str(path)]
        with open(str(self.output_path), "wb") as handle:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                            env=playbook_environment(tmp_path, results, {"TMPDIR": str(tmpdir)}),
                                            cwd=str(tmp_path), start_new_session=True)
        self.pid = self.process.pid
        self.tmpdir = tmpdir
        self.secrets = secrets
        self.tree = []  # (pid, start ticks) of the processes of the run, ansible-playbook's and the agent

    def output(self):
        return self.output_path.read_text(errors="replace")

    def remember_tree(self):
        for pid in descendants(self.pid) + agents_under(self.tmpdir):
            entry = (pid, start_ticks(pid))
            if entry[1] is not None and entry not in self.tree:
                self.tree.append(entry)

    def wait_mid_handshake(self, robot):
        """Wait until the robot holds the run's request and a relay directory exists; (agent pid, relay directory)."""
        def ready():
            if self.process.poll() is not None:
                return "ended"
            agents, relays = agents_under(self.tmpdir), relay_dirs(self.tmpdir)
            if robot.request_count == 1 and len(agents) == 1 and len(relays) == 1:
                return agents[0], relays[0]
            return None

        state = wait_until(ready, START_SECONDS)
        assert state and state != "ended", "no handshake in flight within %d s (%r): %s" % (
            START_SECONDS, state, self.output()[-3000:])
        self.remember_tree()
        return state

    def wait_for_the_end(self, seconds=GONE_SECONDS):
        """Wait for ansible-playbook, then for every process of the run it had, the agent included, to end."""
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            pytest.fail("ansible-playbook did not end within %d s" % seconds)
        ended = wait_until(lambda: not [entry for entry in self.tree if alive(*entry)], seconds)
        assert ended, "processes of the run outlived it: %r" % [entry for entry in self.tree if alive(*entry)]
        check_no_secret(self.output(), self.secrets)
        return self.process.returncode

    def end(self):
        if self.process.poll() is None:
            self.remember_tree()
            self.process.kill()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            pass
        for pid, ticks in self.tree:
            kill_quietly(pid, ticks)


@pytest.fixture
def run_tmpdir():
    """The TMPDIR of the test's runs: under /tmp and short, so the agent and the relay sockets fit in it."""
    path = tempfile.mkdtemp(prefix="spot-lo-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def background_run(tmp_path, run_tmpdir, secrets):
    """background_run(playbook, inventory) -> BackgroundRun in ``run_tmpdir``; what is left of it is ended after the test."""
    runs = []

    def start(playbook, inventory):
        runs.append(BackgroundRun(tmp_path, playbook, inventory, run_tmpdir, secrets, len(runs) + 1))
        return runs[-1]

    yield start
    for run in runs:
        run.end()
    for pid in agents_under(run_tmpdir):
        kill_quietly(pid, start_ticks(pid))


def slow_fleet(fleet_factory):
    fleet, inventory = fleet_factory(robots=1, faults={"robot-001": "slow"}, slow_seconds=SLOW_SECONDS)
    return fleet["robot-001"], inventory


def assert_named_after(relay, agent):
    match = RELAY_NAME.match(relay)
    assert match and (int(match.group(1)), int(match.group(2))) == (agent, start_ticks(agent)), \
        "%s is not named after the agent %d" % (relay, agent)


# -- signals to ansible-playbook mid-handshake ---------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_run_interrupted_mid_handshake_leaves_no_relay_directory(fleet_factory, background_run, run_tmpdir, signum):
    robot, inventory = slow_fleet(fleet_factory)
    run = background_run(login_play(UNVERIFIED), inventory)
    started = time.monotonic()
    agent, relay = run.wait_mid_handshake(robot)
    assert_named_after(relay, agent)

    os.kill(run.pid, signum)  # to ansible-playbook alone, not its process group
    assert run.wait_for_the_end() != 0
    assert time.monotonic() - started < SLOW_SECONDS, "the robot answered: the handshake was not interrupted"
    # The agent has ended with its run, the handshake unfinished: its relay directory went with it.
    assert relay_dirs(run_tmpdir) == []
    assert wait_until(lambda: spot_auth_entries(run_tmpdir) == [], GONE_SECONDS), spot_auth_entries(run_tmpdir)


def test_after_sigkill_mid_handshake_the_next_run_removes_what_is_left(
        fleet_factory, background_run, run_playbook, run_tmpdir):
    robot, inventory = slow_fleet(fleet_factory)
    run = background_run(login_play(UNVERIFIED), inventory)
    started = time.monotonic()
    agent, relay = run.wait_mid_handshake(robot)
    assert_named_after(relay, agent)

    os.kill(run.pid, signal.SIGKILL)
    assert run.wait_for_the_end() == -signal.SIGKILL
    assert time.monotonic() - started < SLOW_SECONDS, "the robot answered: the handshake was not interrupted"
    # The agent outlives ansible-playbook and may remove its relay directory as it ends; a leftover is the agent's.
    leftovers = relay_dirs(run_tmpdir)
    assert leftovers in ([], [relay]), leftovers
    for name in leftovers:
        age(os.path.join(run_tmpdir, name), 120)

    fleet, inventory = fleet_factory(robots=1)
    again = run_playbook(login_play(UNVERIFIED), inventory, env={"TMPDIR": run_tmpdir})
    assert again.returncode == 0, again.text[-3000:]
    assert [result["changed"] for result in again.results("login").values()] == [True]
    assert [record.kind for record in fleet["robot-001"].requests] == ["password"]
    assert wait_until(lambda: not agents_under(run_tmpdir), GONE_SECONDS), "the second run's agent outlived it"
    assert relay_dirs(run_tmpdir) == []
    assert spot_auth_entries(run_tmpdir) == []


def test_the_relay_directory_of_a_killed_agent_is_removed_by_a_later_run_once_a_minute_old(
        fleet_factory, background_run, run_playbook, run_tmpdir):
    robot, inventory = slow_fleet(fleet_factory)
    run = background_run(login_play(UNVERIFIED), inventory)
    agent, relay = run.wait_mid_handshake(robot)
    assert_named_after(relay, agent)
    os.kill(agent, signal.SIGKILL)  # nothing of the agent runs any more: its relay directory stays
    assert run.wait_for_the_end(RUN_SECONDS) == 2, run.output()[-3000:]  # the login failed: the session was lost
    assert relay_dirs(run_tmpdir) == [relay]

    fleet, inventory = fleet_factory(robots=1)
    # A minute has not passed: the killed agent's directory is left alone (its owner might have been starting).
    first = run_playbook(login_play(UNVERIFIED), inventory, env={"TMPDIR": run_tmpdir})
    assert first.returncode == 0, first.text[-3000:]
    assert wait_until(lambda: not agents_under(run_tmpdir), GONE_SECONDS), "the run's agent outlived it"
    assert relay_dirs(run_tmpdir) == [relay]
    # A minute old, its owner gone: the next run's relay removes it.
    age(os.path.join(run_tmpdir, relay), 61)
    second = run_playbook(login_play(UNVERIFIED), inventory, env={"TMPDIR": run_tmpdir})
    assert second.returncode == 0, second.text[-3000:]
    assert wait_until(lambda: not agents_under(run_tmpdir), GONE_SECONDS), "the run's agent outlived it"
    assert relay_dirs(run_tmpdir) == []
    assert spot_auth_entries(run_tmpdir) == []


# -- a token cache's temporary files ----------------------------------------------------------------

def test_a_play_using_a_token_cache_removes_a_killed_writers_old_temporary_file(
        fleet_factory, run_playbook, tmp_path, run_tmpdir):
    fleet, inventory = fleet_factory(robots=1)
    robot = fleet["robot-001"]
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    for name, seconds in ((".x.jwt.abc.tmp", 120), (".y.jwt.def.tmp", 10), ("notes.tmp", 120)):
        (cache / name).write_text("half a token")
        os.chmod(str(cache / name), 0o600)
        age(cache / name, seconds)
    run = run_playbook(login_play("{token_cache: %s}" % cache), inventory, env={"TMPDIR": run_tmpdir})
    assert run.returncode == 0, run.text[-3000:]
    assert [result["changed"] for result in run.results("login").values()] == [True]
    assert [record.kind for record in robot.requests] == ["password"]
    # The old one went; a young one (a writer may be at it) and a file not named like one stay.
    assert sorted(os.listdir(str(cache))) == sorted(["%s.%s.jwt" % (robot.serial, robot.username), ".y.jwt.def.tmp",
                                                     "notes.tmp"])
