# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the unverified-TLS relay leaves in TMPDIR: named after its owner, removed at exit, reaped once stale."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import importlib
import json
import os
import re
import select
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time

import shutil

import pytest

from ansible_collections.spot.auth.plugins.module_utils import _tls_relay
from ansible_collections.spot.auth.tests.unit.conftest import COLLECTION_ROOT

COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))
RELAY_NAME = re.compile(r"^spot-auth-relay-(\d+)-(\d+)-[A-Za-z0-9_]+$")
WAIT_SECONDS = 30  # for a process of a test to start or end


def process_module():
    return importlib.import_module("ansible_collections.spot.auth.plugins.module_utils._process")


def ticks_of(pid):
    """Field 22 of /proc/<pid>/stat, read here independently of the code under test."""
    with open("/proc/%d/stat" % pid, "rb") as handle:
        data = handle.read()
    return int(data[data.rindex(b")") + 2:].split()[19])


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(WAIT_SECONDS)
    return process.pid


def age(path, seconds):
    moment = time.time() - seconds
    os.utime(str(path), (moment, moment), follow_symlinks=False)


def relay_dirs(base):
    return sorted(name for name in os.listdir(str(base)) if name.startswith("spot-auth-relay-"))


def make_dir(base, name, seconds_old=120):
    path = os.path.join(str(base), name)
    os.mkdir(path, 0o700)
    with open(os.path.join(path, "relay.sock"), "w"):
        pass  # where the socket was
    age(path, seconds_old)
    return path


# -- process identities ----------------------------------------------------------------------------

def test_a_process_is_named_by_its_pid_and_start_ticks():
    process = process_module()
    me = os.getpid()
    assert process.own_identity() == (me, ticks_of(me))
    assert process.process_start_time(me) == ticks_of(me)
    assert process.process_is_alive(me, ticks_of(me)) and process.process_is_alive(me, 0)
    assert not process.process_is_alive(me, ticks_of(me) + 1)  # the pid of an ended process, reused
    gone = dead_pid()
    assert process.process_start_time(gone) is None and not process.process_is_alive(gone, 0)


def test_a_command_name_with_parentheses_and_spaces_does_not_confuse_the_start_time():
    process = process_module()
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        with open("/proc/self/comm", "w") as handle:
            handle.write("a) 1 2 (b")
        print("named", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ready, _unused, _unused = select.select([child.stdout], [], [], WAIT_SECONDS)
        assert ready and child.stdout.readline().strip() == b"named"
        assert process.process_start_time(child.pid) == ticks_of(child.pid)
    finally:
        child.stdin.close()
        child.wait(WAIT_SECONDS)


# -- the reaper ----------------------------------------------------------------------------------

def test_only_stale_directories_of_ended_owners_are_removed(tmp_path):
    gone, me = dead_pid(), os.getpid()
    mine = ticks_of(me)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    base = tmp_path / "tmp"
    base.mkdir()
    removed = [
        make_dir(base, "spot-auth-relay-%d-%d-abc123" % (gone, 4242)),
        make_dir(base, "spot-auth-relay-%d-%d-reused" % (me, mine + 1)),  # this pid, another start: its owner ended
        make_dir(base, "spot-auth-relay-%d-%d-long_ago" % (gone, 4242), seconds_old=30 * 86400),
    ]
    kept = [
        make_dir(base, "spot-auth-relay-%d-%d-young" % (gone, 4242), seconds_old=30),  # its owner may be starting
        make_dir(base, "spot-auth-relay-%d-%d-alive" % (me, mine)),
        make_dir(base, "spot-auth-relay-%d-0-unknown" % me),  # start time unknown: a live pid keeps it
        make_dir(base, "spot-auth-relay-q3zx_91a"),  # not named after an owner
        make_dir(base, "spot-auth-%d" % os.getuid()),
        make_dir(base, "other-relay-%d-%d-abc" % (gone, 4242)),
        make_dir(base, "spot-auth-relay-x%d-%d-abc" % (gone, 4242)),
    ]
    plain = os.path.join(str(base), "spot-auth-relay-%d-%d-file" % (gone, 4242))
    with open(plain, "w"):
        pass
    age(plain, 120)
    link = os.path.join(str(base), "spot-auth-relay-%d-%d-link" % (gone, 4242))
    os.symlink(str(outside), link)
    age(link, 120)
    kept += [plain, link]
    _tls_relay.remove_leftover_directories(str(base))
    assert sorted(os.path.join(str(base), name) for name in os.listdir(str(base))) == sorted(kept)
    assert not any(os.path.exists(path) for path in removed)
    assert (outside / "keep").read_text() == "x"
    assert _tls_relay.LEFTOVER_SECONDS == 60


def test_the_age_is_measured_against_now(tmp_path):
    gone = dead_pid()
    path = make_dir(tmp_path, "spot-auth-relay-%d-%d-abc" % (gone, 4242), seconds_old=0)
    made = os.stat(path).st_mtime
    _tls_relay.remove_leftover_directories(str(tmp_path), now=made + 59)
    assert os.path.isdir(path)
    _tls_relay.remove_leftover_directories(str(tmp_path), now=made + 61)
    assert not os.path.exists(path)


def test_the_default_place_is_the_temporary_directory_and_a_missing_one_is_no_error(tmp_path, monkeypatch):
    gone = dead_pid()
    path = make_dir(tmp_path, "spot-auth-relay-%d-%d-abc" % (gone, 4242))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _tls_relay.remove_leftover_directories()
    assert not os.path.exists(path)
    _tls_relay.remove_leftover_directories(str(tmp_path / "missing"))


def test_a_directory_of_another_user_is_left_alone(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing a directory's owner needs root")
    path = make_dir(tmp_path, "spot-auth-relay-%d-%d-abc" % (dead_pid(), 4242))
    os.chown(path, 65534, 65534)
    _tls_relay.remove_leftover_directories(str(tmp_path))
    assert os.path.isdir(path)


# -- a relay's own directory -----------------------------------------------------------------------

@pytest.fixture
def short_tmp():
    """A TMPDIR under /tmp short enough for the relay's socket path (a Unix socket path holds at most 107 bytes)."""
    path = tempfile.mkdtemp(prefix="sar-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_relay_names_its_directory_after_its_process_and_removes_it_on_close(short_tmp, monkeypatch):
    base = short_tmp
    monkeypatch.setattr(tempfile, "tempdir", base)
    monkeypatch.setattr(_tls_relay, "_REAPED", [])  # as in a process that has not opened a relay yet
    stale = make_dir(base, "spot-auth-relay-%d-%d-stale" % (dead_pid(), 4242))
    relay = _tls_relay.UnverifiedTlsRelay("127.0.0.1", 9, "auth.spot.robot")
    try:
        directory = os.path.dirname(relay.target[len("unix:"):])
        assert os.path.dirname(directory) == base
        match = RELAY_NAME.match(os.path.basename(directory))
        assert match and (int(match.group(1)), int(match.group(2))) == (os.getpid(), ticks_of(os.getpid())), directory
        info = os.lstat(directory)
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.geteuid()
        assert not os.path.exists(stale), "the first relay of a process removes stale directories"
        # Looked for once per process: a second relay does not list TMPDIR again.
        later = make_dir(base, "spot-auth-relay-%d-%d-later" % (dead_pid(), 4242))
        second = _tls_relay.UnverifiedTlsRelay("127.0.0.1", 9, "auth.spot.robot")
        second.close()
        assert os.path.isdir(later)
        assert relay_dirs(base) == sorted([os.path.basename(directory), os.path.basename(later)])
    finally:
        relay.close()
    assert relay_dirs(base) == [os.path.basename(later)]


def test_a_relay_opens_in_a_tmpdir_where_the_former_directory_name_fit(short_tmp, monkeypatch):
    base = os.path.join(short_tmp, "d" * (70 - len(short_tmp) - 1))
    os.mkdir(base)
    # 70 + len("/spot-auth-relay-XXXXXXXX/relay.sock") = 106 bytes: within the 108 of a Unix socket address.
    monkeypatch.setattr(tempfile, "tempdir", base)
    monkeypatch.setattr(_tls_relay, "_REAPED", [True])
    relay = _tls_relay.UnverifiedTlsRelay("127.0.0.1", 9, "auth.spot.robot")
    directory = os.path.dirname(relay.target[len("unix:"):])
    assert os.path.isdir(directory)
    assert len(os.fsencode(relay.target[len("unix:"):])) <= 107  # bound, in $TMPDIR or in /tmp when it is too long
    relay.close()
    assert relay_dirs(base) == [] and not os.path.exists(directory)


RELAY_PROCESS = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.spot.auth.plugins.module_utils._tls_relay import UnverifiedTlsRelay
    how = sys.argv[2]
    relay = UnverifiedTlsRelay("127.0.0.1", 9, "auth.spot.robot")
    answer = {"directory": os.path.dirname(relay.target[len("unix:"):])}
    if how == "fork":
        child = os.fork()
        if child == 0:
            sys.exit(0)  # a forked child exits the interpreter's way, running what was registered at exit
        os.waitpid(child, 0)
        answer["after the child"] = os.path.isdir(answer["directory"])
    print(json.dumps(answer), flush=True)
    if how == "raise":
        raise RuntimeError("planned failure")
    if how == "exit":
        sys.exit(3)
    if how == "wait":
        time.sleep(60)
""")


class RelayProcess:
    """A Python process with an open relay, TMPDIR ``base``; ``answer`` is what it printed once the relay was open."""

    def __init__(self, base, how):
        environment = dict(os.environ, TMPDIR=str(base))
        self.process = subprocess.Popen([sys.executable, "-c", RELAY_PROCESS, COLLECTIONS_ROOT, how], env=environment,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready, _unused, _unused = select.select([self.process.stdout], [], [], WAIT_SECONDS)
        line = self.process.stdout.readline() if ready else b""
        if not line:
            self.end()
            pytest.fail("the relay process did not start: %s" % self.process.stderr.read(4000).decode(errors="replace"))
        self.answer = json.loads(line)
        self.directory = self.answer["directory"]

    def wait(self):
        try:
            return self.process.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.end()
            pytest.fail("the relay process did not end within %d s" % WAIT_SECONDS)

    def end(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT_SECONDS)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def relay_process(short_tmp):
    """relay_process(how) -> RelayProcess with TMPDIR ``short_tmp``; ended after the test."""
    base = short_tmp
    started = []

    def start(how):
        started.append(RelayProcess(base, how))
        return started[-1]

    yield start
    for process in started:
        process.end()


@pytest.mark.parametrize("how, status", [("return", 0), ("exit", 3), ("raise", 1), ("SIGINT", -signal.SIGINT)])
def test_the_directory_goes_when_the_interpreter_exits_without_closing_the_relay(relay_process, short_tmp, how, status):
    process = relay_process("wait" if how == "SIGINT" else how)
    match = RELAY_NAME.match(os.path.basename(process.directory))
    assert match and int(match.group(1)) == process.process.pid and int(match.group(2)) == ticks_of(process.process.pid)
    if how == "SIGINT":
        assert os.path.isdir(process.directory)
        process.process.send_signal(signal.SIGINT)  # KeyboardInterrupt; Python then ends by SIGINT, after its exit handlers
    assert process.wait() == status
    assert relay_dirs(short_tmp) == []


def test_a_forked_child_leaves_its_parents_relay_alone(relay_process, short_tmp):
    process = relay_process("fork")
    assert process.answer["after the child"] is True
    assert process.wait() == 0
    assert relay_dirs(short_tmp) == []


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_owners_directory_is_removed_by_the_next_relay_once_a_minute_old(relay_process, short_tmp, signum):
    base = short_tmp
    killed = relay_process("wait")
    alive = relay_process("wait")
    os.kill(killed.process.pid, signum)  # SIGTERM's default action: no exit handler runs either
    assert killed.wait() == -signum
    leftover = os.path.basename(killed.directory)
    assert relay_dirs(base) == sorted([leftover, os.path.basename(alive.directory)])
    # Young: left alone by the next relay, whoever opens it.
    assert relay_process("return").wait() == 0
    assert relay_dirs(base) == sorted([leftover, os.path.basename(alive.directory)])
    # A minute old: the next relay removes it; the directory of a live owner stays, however old.
    age(killed.directory, 61)
    age(alive.directory, 3600)
    assert relay_process("return").wait() == 0
    assert relay_dirs(base) == [os.path.basename(alive.directory)]
    alive.process.kill()
    alive.wait()
