# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run's session agent in real ansible-playbook runs: where it lives, who may talk to it, what it leaves.

Every run gets a short TMPDIR of its own test (under /tmp: a ``$TMPDIR/spot-auth-<uid>`` longer than
64 characters gives way to ``/tmp/spot-auth-<uid>``), so the user's directory
(``$TMPDIR/spot-auth-<uid>/``) and the run's session directory in it (``<run pid>-<run start>/``) are
known and isolated from other runs on the machine. Agents are found by their command line, which
names the session directory. Every wait is bounded, and every process a test starts is ended by its pid.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import pathlib
import pwd
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest
from helpers import COLLECTIONS_PATH, edit_inventory, login_play, playbook_environment, spot_hosts
from processes import alive, descendants, kill_quietly, processes, read_proc, spot_auth_entries, start_ticks, wait_until

from ansible_collections.spot.auth.plugins.module_utils._options import settings_from
from ansible_collections.spot.auth.plugins.plugin_utils import _agent
from spot_auth_sim.testing import JWT_SHAPE

UID = os.getuid()
AGENT_MARKER = b"plugin_utils._agent"
USER_DIRECTORY = "spot-auth-%d" % UID
# A session directory, relative to TMPDIR: the user's directory, then the run's pid and start time.
SESSION_NAME = re.compile(r"^spot-auth-(\d+)/(\d+)-(\d+)$")
# What the agent's environment may hold (PATH, locale, TLS, gRPC, Python, proxies): never a credential.
AGENT_ENVIRONMENT = re.compile(r"^(PATH|HOME|USER|LOGNAME|LANG|LC_\w+|TZ|TMPDIR|TEMP|TMP|PYTHON\w*|SSL_CERT_\w+|GRPC_\w+|"
                               r"LD_LIBRARY_PATH|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)$")
UNAVAILABLE = "spot.auth: the run's session agent is unavailable"
SITE_PACKAGES = os.path.dirname(os.path.dirname(os.path.abspath(pytest.__file__)))
START_SECONDS = 30  # for ansible-playbook to start, log in and reach the task a test waits in
GONE_SECONDS = 15  # for the agent to end and remove its directory once the run is over
RUN_SECONDS = 180  # for a whole run


# -- processes and directories -------------------------------------------------------------------


def agents_in(directory):
    """pids of the session agents whose session directory is ``directory`` or below it (one argument of their command line)."""
    directory = os.path.normpath(str(directory)).encode()

    def names_it(cmdline):
        return any(arg == directory or arg.startswith(directory + b"/") for arg in cmdline.split(b"\0"))
    return sorted(pid for pid, (_ppid, cmdline) in processes().items() if AGENT_MARKER in cmdline and names_it(cmdline))


def agents_under(tmpdir):
    """pids of this user's session agents whose directory is in ``tmpdir`` (``<tmpdir>/spot-auth-<uid>/<run>``)."""
    return agents_in(os.path.join(str(tmpdir), USER_DIRECTORY))


def session_dirs(tmpdir):
    """The session directories in ``tmpdir``, as ``spot-auth-<uid>/<run pid>-<run start>`` (what SESSION_NAME matches)."""
    found = []
    for name in spot_auth_entries(tmpdir):
        try:
            found.extend("%s/%s" % (name, child) for child in os.listdir(os.path.join(str(tmpdir), name)))
        except OSError:
            pass  # removed in the meantime, or not a directory
    return sorted(found)


def left_behind(tmpdir):
    return spot_auth_entries(tmpdir), session_dirs(tmpdir), agents_under(tmpdir)


def assert_nothing_left(tmpdir, seconds=GONE_SECONDS):
    """Within ``seconds``: no agent, and nothing named ``spot-auth-*`` in ``tmpdir`` (the user's directory went too)."""
    gone = wait_until(lambda: left_behind(tmpdir) == ([], [], []), seconds)
    assert gone, "after %d s, directories and agents remain: %r" % (seconds, left_behind(tmpdir))


def assert_private_directory(path, uid=UID):
    info = os.lstat(str(path))
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == uid and stat.S_IMODE(info.st_mode) == 0o700, \
        "%s: mode %o, uid %d" % (path, info.st_mode, info.st_uid)


def uid_of(pid):
    for line in read_proc(pid, "status").decode().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def check_no_secret(text, secrets, what):
    """Fails when ``text`` holds a secret or a JWT; the message never shows the secret."""
    leaked = [index for index, secret in enumerate(sorted(secrets)) if secret and secret in text]
    assert not leaked, "%s holds %d secret(s)" % (what, len(leaked))
    shaped = JWT_SHAPE.search(text)
    assert shaped is None, "%s holds something shaped like a token" % what


def files_under(directory):
    """{path: contents} of the regular files under ``directory`` (sockets and the like skipped)."""
    found = {}
    for parent, _dirs, names in os.walk(str(directory)):
        for name in names:
            path = os.path.join(parent, name)
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    with open(path, "rb") as handle:
                        found[path] = handle.read(1 << 20)
            except OSError:
                pass  # removed in the meantime
    return found


# -- runs in the background ----------------------------------------------------------------------

class BackgroundPlay:
    """An ansible-playbook run started with Popen, so a test can act while it runs."""

    def __init__(self, process, output_path, results_path, secrets):
        self.process = process
        self.pid = process.pid
        self.ticks = start_ticks(process.pid)
        self.tree = []  # (pid, start ticks) of its processes, as last seen
        self._output_path = output_path
        self._results_path = results_path
        self._secrets = secrets

    def remember_tree(self):
        """Note the processes below ansible-playbook (workers outlive a SIGKILL of their parent)."""
        for pid in descendants(self.pid):
            entry = (pid, start_ticks(pid))
            if entry not in self.tree:
                self.tree.append(entry)

    def session_directory(self):
        """The run's session directory, relative to its TMPDIR (as session_dirs lists it)."""
        return "%s/%d-%d" % (USER_DIRECTORY, self.pid, self.ticks)

    def output(self):
        with open(self._output_path, errors="replace") as handle:
            return handle.read()

    def finish(self, seconds=RUN_SECONDS):
        """Wait for the run to end; its return code. Its output must hold no secret."""
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            pytest.fail("ansible-playbook did not end within %d s" % seconds)
        check_no_secret(self.output(), self._secrets, "the output of ansible-playbook")
        return self.process.returncode

    def results(self, task_name):
        with open(self._results_path) as handle:
            data = json.load(handle)
        for play in data["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"] == task_name:
                    return task["hosts"]
        raise KeyError(task_name)

    def end(self):
        """End what is left of the run: ansible-playbook, then the processes it had, by pid."""
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
def background_play(tmp_path, secrets):
    """background_play(playbook_yaml, inventory, env=None, args=()) -> BackgroundPlay; ended after the test."""
    plays = []

    def start(playbook, inventory, env=None, args=()):
        number = len(plays) + 1
        path = tmp_path / ("background%d.yml" % number)
        path.write_text(textwrap.dedent(playbook))
        results = tmp_path / ("background-results%d.json" % number)
        output = tmp_path / ("background-output%d.txt" % number)
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-vvvv", "-i", str(inventory), str(path)]
        with open(str(output), "wb") as handle:
            process = subprocess.Popen(command + list(args), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                                       env=playbook_environment(tmp_path, results, env), cwd=str(tmp_path),
                                       start_new_session=True)
        play = BackgroundPlay(process, str(output), str(results), secrets)
        plays.append(play)
        return play

    yield start
    for play in plays:
        play.end()


@pytest.fixture
def run_tmpdir():
    """The TMPDIR of the test's runs: under /tmp, short enough that the agent lives in it (not in /tmp itself)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="spot-agent-test-", dir="/tmp"))
    assert len(os.path.join(str(path), USER_DIRECTORY)) <= _agent._MAX_USER_DIRECTORY
    yield path
    shutil.rmtree(str(path), ignore_errors=True)


@pytest.fixture
def ended_agents(run_tmpdir):
    """Agents still alive under the test's TMPDIR when it ends (it failed) are ended by pid."""
    yield
    for pid in agents_under(run_tmpdir):
        kill_quietly(pid)


# Once every host has logged in, the run marks that it holds (the file named by the extra variable
# ``release``, plus ".holding"), then waits in the task named ``hold``.
MARK_TASK = """
    - name: holding
      ansible.builtin.file:
        path: "{{ release }}.holding"
        state: touch
        mode: "0600"
      run_once: true
"""
# Waits until the test creates the file named by ``release`` (at most 60 s).
RELEASE_TASK = MARK_TASK + """
    - name: hold
      ansible.builtin.wait_for:
        path: "{{ release }}"
        timeout: 60
      run_once: true
"""
HOLD_PLAY = login_play() + MARK_TASK + """
    - name: hold
      ansible.builtin.pause:
        seconds: 60
"""


def wait_for_logins(play, fleet, tmpdir, release):
    """Wait until the run logged in everywhere and holds; the pid of its agent (the one agent in the run's directory)."""
    directory = os.path.join(str(tmpdir), play.session_directory())

    def ready():
        if play.process.poll() is not None:
            return "ended"
        agents = agents_in(directory)
        if os.path.exists(str(release) + ".holding") and len(agents) == 1 and os.path.isdir(directory):
            return agents
        return None

    state = wait_until(ready, START_SECONDS)
    assert state and state != "ended", "the run did not log in within %d s (%r): %s" % (
        START_SECONDS, state, play.output()[-3000:])
    assert all(robot.request_count == 1 for robot in fleet)
    play.remember_tree()
    return state[0]


# -- 1. the directory and the socket are private -------------------------------------------------

def test_session_directory_and_socket_are_private_while_the_run_lasts(fleet_factory, run_playbook, run_tmpdir, ended_agents):
    fleet, inventory = fleet_factory(robots=3)
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: login
              spot.auth.token:
            - name: user directories
              ansible.builtin.find:
                paths: "{{ session_parent }}"
                patterns: "spot-auth-*"
                file_type: any
              run_once: true
              register: users
            - name: user directory
              ansible.builtin.stat:
                path: "{{ users.files[0].path }}"
              run_once: true
            - name: session directories
              ansible.builtin.find:
                paths: "{{ users.files[0].path }}"
                patterns: "*"
                file_type: any
              run_once: true
              register: found
            - name: directory
              ansible.builtin.stat:
                path: "{{ found.files[0].path }}"
              run_once: true
            - name: socket
              ansible.builtin.stat:
                path: "{{ found.files[0].path }}/agent.sock"
              run_once: true
            - name: lock
              ansible.builtin.stat:
                path: "{{ found.files[0].path }}/agent.lock"
              run_once: true
    """, inventory, args=["-e", "session_parent=%s" % run_tmpdir], env={"TMPDIR": str(run_tmpdir)})
    assert run.returncode == 0, run.text[-3000:]
    assert all(result["changed"] for result in run.results("login").values())
    assert [robot.request_count for robot in fleet] == [1, 1, 1]
    users = run.results("user directories")["robot-001"]
    assert [os.path.basename(entry["path"]) for entry in users["files"]] == [USER_DIRECTORY], users["files"]
    found = run.results("session directories")["robot-001"]
    assert found["matched"] == 1, "one run, one session directory, however many hosts and forks"
    name = "%s/%s" % (USER_DIRECTORY, os.path.basename(found["files"][0]["path"]))
    match = SESSION_NAME.match(name)
    assert match and int(match.group(1)) == UID, name

    # The user's directory, checked before anything in it is used, is private while the run lasts.
    user_directory = run.results("user directory")["robot-001"]["stat"]
    assert user_directory["isdir"] and not user_directory["islnk"]
    assert user_directory["mode"] == "0700" and user_directory["uid"] == UID, user_directory["mode"]
    directory = run.results("directory")["robot-001"]["stat"]
    assert directory["isdir"] and not directory["islnk"]
    assert directory["mode"] == "0700" and directory["uid"] == UID
    sock = run.results("socket")["robot-001"]["stat"]
    assert sock["exists"] and sock["issock"] and sock["uid"] == UID
    assert int(sock["mode"], 8) & 0o077 == 0, sock["mode"]
    lock = run.results("lock")["robot-001"]["stat"]
    assert lock["isreg"] and lock["uid"] == UID and int(lock["mode"], 8) & 0o077 == 0, lock["mode"]
    # After the run, nothing named spot-auth-* is left in TMPDIR: the user's directory went with the run's.
    assert_nothing_left(run_tmpdir)
    assert spot_auth_entries(run_tmpdir) == []


# -- 2. another user is refused ------------------------------------------------------------------

OTHER_USER_CLIENT = """
import json
import sys

from ansible_collections.spot.auth.plugins.module_utils._errors import SpotAuthError
from ansible_collections.spot.auth.plugins.module_utils._options import AuthSettings
from ansible_collections.spot.auth.plugins.plugin_utils import _agent

settings = AuthSettings(**json.loads(sys.stdin.readline()))
for _number in range(10):
    if sys.stdin.readline().strip() != "ask":
        break
    result = _agent.ask([settings], 1)[0]
    if isinstance(result, SpotAuthError):
        answer = {"error": result.to_result()["error_type"]}
    else:
        answer = {"method": result.method, "token_length": len(result.token)}
    answer["directory"] = _agent.session_directory()
    print(json.dumps(answer), flush=True)
"""


def nobody_ids():
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


@pytest.fixture
def other_user():
    """(uid, gid) of the user 'nobody', and a sticky world-writable directory like /tmp for its files."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run a process as another user")
    # Not under tmp_path: pytest's base directory is private to root, so nobody could not reach it.
    shared = tempfile.mkdtemp(prefix="sat-other-user-", dir="/tmp")
    os.chmod(shared, 0o1777)
    yield nobody_ids(), shared
    shutil.rmtree(shared, ignore_errors=True)


# Prints the names, in the venv's site-packages (argv[1]), of what importing the agent loads from there.
LOADED_FROM_SITE = """
import json, sys
import grpc, ansible_collections.spot.auth.plugins.plugin_utils._agent
site = sys.argv[1] + "/"
names = {module.__file__[len(site):].split("/")[0] for module in list(sys.modules.values())
         if (getattr(module, "__file__", None) or "").startswith(site)}
print(json.dumps(sorted(names)))
"""


@pytest.fixture(scope="module")
def other_user_python():
    """(python, PYTHONPATH) with which user 'nobody' imports grpc and this collection; fails naming why not.

    The checkout and its venv may be out of that user's reach (a 0700 parent directory, a Python under
    root's home), so what the import loads from them is copied to a directory that user can read.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root, to run a process as another user")
    readable = tempfile.mkdtemp(prefix="sat-other-python-", dir="/tmp")
    os.chmod(readable, 0o755)
    try:
        loaded = subprocess.run([sys.executable, "-c", LOADED_FROM_SITE, SITE_PACKAGES], capture_output=True, text=True,
                                env={"PYTHONPATH": os.pathsep.join([COLLECTIONS_PATH, SITE_PACKAGES])}, timeout=120, check=True)
        for name in json.loads(loaded.stdout):
            source = os.path.join(SITE_PACKAGES, name)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(readable, name), symlinks=True)
            else:
                shutil.copy2(source, readable)
        plugins = os.path.join("ansible_collections", "spot", "auth", "plugins")
        shutil.copytree(os.path.join(COLLECTIONS_PATH, plugins), os.path.join(readable, plugins))
        yield interpreter_for(nobody_ids(), readable), readable
    finally:
        shutil.rmtree(readable, ignore_errors=True)


def interpreter_for(ids, pythonpath):
    """A Python that user ``ids`` may run and that imports grpc and this collection from ``pythonpath``."""
    candidates = [sys.executable, os.path.realpath(sys.executable), "/usr/bin/python%d.%d" % sys.version_info[:2]]
    reasons = []
    for candidate in candidates:
        try:
            probe = subprocess.run([candidate, "-c", "import grpc, ansible_collections.spot.auth.plugins.plugin_utils._agent"],
                                   user=ids[0], group=ids[1], extra_groups=[], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath},
                                   capture_output=True, timeout=120, check=False, cwd="/")
        except OSError as exc:
            reasons.append("%s: %s" % (candidate, exc))  # the venv's Python may live in root's home
            continue
        if probe.returncode == 0:
            return candidate
        reasons.append("%s: %s" % (candidate, probe.stderr.decode(errors="replace")[-600:]))
    pytest.fail("no Python that user %d can run imports grpc and spot.auth:\n%s" % (ids[0], "\n".join(reasons)))


def read_line(stream, seconds):
    ready, _unused, _unused = select.select([stream], [], [], seconds)
    return stream.readline().decode() if ready else ""


def test_another_user_is_refused_without_an_answer(fleet_factory, other_user, other_user_python, tmp_path):
    (uid, gid), shared = other_user
    python, pythonpath = other_user_python
    fleet, _inventory = fleet_factory(robots=1)
    robot = fleet["robot-001"]
    ca_path = os.path.join(shared, "ca.pem")
    shutil.copyfile(fleet.ca_path, ca_path)
    os.chmod(ca_path, 0o644)
    script = os.path.join(shared, "client.py")
    with open(script, "w") as handle:
        handle.write(OTHER_USER_CLIENT)
    os.chmod(script, 0o644)
    settings = settings_from({"hostname": "127.0.0.1", "port": robot.port, "username": robot.username,
                              "password": robot.password, "ca_cert": ca_path, "timeout": 10, "retries": 1})
    environment = {"PATH": "/usr/bin:/bin", "TMPDIR": shared, "HOME": shared, "PYTHONPATH": pythonpath}
    client = subprocess.Popen([python, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              user=uid, group=gid, extra_groups=[], env=environment, bufsize=0)
    agents = []
    try:
        client.stdin.write((json.dumps(_agent.encode_settings(settings)) + "\nask\n").encode())
        first = read_line(client.stdout, 90)
        if not first:
            client.kill()
            pytest.fail("the other user's client did not answer: %s" % client.stderr.read(4000).decode(errors="replace"))
        first = json.loads(first)
        assert first["method"] == "password" and first["token_length"] > 100, first
        directory = first["directory"]
        user_directory = os.path.dirname(directory)
        assert user_directory == os.path.join(shared, "spot-auth-%d" % uid), directory
        assert re.match(r"^\d+-\d+$", os.path.basename(directory)), directory
        assert_private_directory(user_directory, uid)
        assert_private_directory(directory, uid)
        agents = [(pid, start_ticks(pid)) for pid, (_ppid, cmdline) in processes().items()
                  if AGENT_MARKER in cmdline and directory.encode() in cmdline]
        assert len(agents) == 1 and uid_of(agents[0][0]) == uid, agents
        assert robot.request_count == 1

        # Root reaches the socket (permissions do not stop root); the agent must still say nothing.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        answer, closed = None, None
        try:
            sock.connect(os.path.join(directory, _agent.SOCKET_NAME))
            request = {"version": _agent.PROTOCOL_VERSION, "concurrency": 1, "handshakes": [_agent.encode_settings(settings)]}
            try:
                _agent.send_message(sock, request)
                answer = _agent.receive_message(sock)
            except (EOFError, ConnectionResetError, BrokenPipeError) as exc:
                # EOF, or a reset when the agent closed with the request unread: no answer either way.
                closed = type(exc).__name__
        finally:
            sock.close()
        assert answer is None and closed, "another user's request was answered"
        assert robot.request_count == 1, "the refused request reached the robot"

        # The agent is still there for its own user, and remembers the token it got.
        client.stdin.write(b"ask\n")
        second = read_line(client.stdout, 60)
        assert second, "the other user's client did not answer again"
        assert json.loads(second)["method"] == "session"
        assert robot.request_count == 1

        # Its run (the client) ends: the agent ends and removes its directory, and the user's, now empty.
        client.stdin.close()
        client.wait(30)
        gone = wait_until(lambda: not os.path.exists(user_directory) and not any(alive(pid, ticks) for pid, ticks in agents),
                          GONE_SECONDS)
        assert gone, "the other user's agent or its directories outlived its run"
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(30)
        for pid, ticks in agents:
            kill_quietly(pid, ticks)


# -- 3. nothing is left behind -------------------------------------------------------------------

@pytest.mark.parametrize("ending", ["end", "failure"])
def test_nothing_is_left_after_a_run_ends(fleet_factory, run_playbook, run_tmpdir, ended_agents, ending):
    fleet, inventory = fleet_factory(robots=2)
    last = {"end": "ansible.builtin.debug: {msg: done}", "failure": "ansible.builtin.fail: {msg: planned failure}"}[ending]
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: login
              spot.auth.token:
            - name: session directories
              ansible.builtin.find:
                paths: "{{ session_parent }}"
                patterns: "*"
                file_type: directory
              run_once: true
            - name: last
              %s
    """ % last, inventory, args=["-e", "session_parent=%s" % (run_tmpdir / USER_DIRECTORY)], env={"TMPDIR": str(run_tmpdir)})
    assert run.returncode == (0 if ending == "end" else 2), run.text[-3000:]
    assert all(result["changed"] for result in run.results("login").values())
    assert run.results("session directories")["robot-001"]["matched"] == 1, "the agent was there during the run"
    assert_nothing_left(run_tmpdir)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_nothing_is_left_after_ansible_playbook_is_signalled(
        fleet_factory, background_play, run_tmpdir, tmp_path, ended_agents, signum):
    fleet, inventory = fleet_factory(robots=2)
    release = tmp_path / "release"
    play = background_play(HOLD_PLAY, inventory, env={"TMPDIR": str(run_tmpdir)}, args=["-e", "release=%s" % release])
    agent = wait_for_logins(play, fleet, run_tmpdir, release)
    agent_ticks = start_ticks(agent)
    assert session_dirs(run_tmpdir) == [play.session_directory()], "the directory is named after the run"
    assert wait_until(lambda: "Pausing for 60 seconds" in play.output(), START_SECONDS), "the run did not reach its pause"
    assert play.process.poll() is None, "the run still holds in its pause"
    play.remember_tree()  # its worker in the pause outlives a SIGKILL of ansible-playbook: ended after the test

    os.kill(play.pid, signum)  # to ansible-playbook alone, not its process group
    try:
        play.process.wait(GONE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail("ansible-playbook did not end within %d s of %s" % (GONE_SECONDS, signal.Signals(signum).name))
    if signum == signal.SIGKILL:
        assert play.process.returncode == -signal.SIGKILL
    else:
        assert play.process.returncode != 0
    assert_nothing_left(run_tmpdir)
    # An exiting process loses its command line before it is a zombie: wait for the end itself.
    assert wait_until(lambda: not alive(agent, agent_ticks), GONE_SECONDS), "the agent is still alive"
    check_no_secret(play.output(), {robot.password for robot in fleet}, "the output of ansible-playbook")


# -- 4. stale directories, and an agent killed with SIGKILL --------------------------------------

def dead_pid():
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(60)
    return process.pid


def make_session_dir(tmpdir, name, uid=UID):
    """``<tmpdir>/<name>`` (``spot-auth-<uid>/<pid>-<ticks>``), both 0700 and owned by ``uid``, as an agent leaves them."""
    user_directory, path = os.path.join(str(tmpdir), os.path.dirname(name)), os.path.join(str(tmpdir), name)
    for directory in (user_directory, path):
        if not os.path.isdir(directory):
            os.mkdir(directory)
        os.chmod(directory, 0o700)
    with open(os.path.join(path, _agent.SOCKET_NAME), "w"):
        pass  # a dummy file where the socket was
    for directory in (path, os.path.join(path, _agent.SOCKET_NAME), user_directory):
        os.chown(directory, uid, -1)
    return path


def test_a_new_agent_removes_stale_directories_of_ended_runs_only(fleet_factory, run_playbook, run_tmpdir, ended_agents):
    fleet, inventory = fleet_factory(robots=2)
    gone_pid = dead_pid()
    stale = "%s/%d-%d" % (USER_DIRECTORY, gone_pid, 4242)
    # The session directory of a run that is alive (this test): its agent may be starting, so it stays.
    live = "%s/%d-%d" % (USER_DIRECTORY, os.getpid(), start_ticks(os.getpid()))
    # Another user's directory in the same TMPDIR: not this user's to touch.
    foreign = "spot-auth-%d/%d-%d" % (UID + 1, gone_pid, 4242)
    make_session_dir(run_tmpdir, stale)
    make_session_dir(run_tmpdir, live)
    make_session_dir(run_tmpdir, foreign, uid=UID + 1 if os.geteuid() == 0 else UID)
    run = run_playbook(login_play(), inventory, env={"TMPDIR": str(run_tmpdir)})
    assert run.returncode == 0, run.text[-3000:]
    assert [robot.request_count for robot in fleet] == [1, 1]
    assert UNAVAILABLE not in run.text
    # The stale one went; the user's directory stays, holding the live one; the other user's is untouched.
    remaining = wait_until(lambda: session_dirs(run_tmpdir) == sorted([live, foreign]) and not agents_under(run_tmpdir),
                           GONE_SECONDS)
    assert remaining, left_behind(run_tmpdir)
    assert spot_auth_entries(run_tmpdir) == sorted([USER_DIRECTORY, "spot-auth-%d" % (UID + 1)])
    assert os.path.exists(os.path.join(str(run_tmpdir), foreign, _agent.SOCKET_NAME))
    assert_private_directory(run_tmpdir / USER_DIRECTORY)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=["SIGKILL", "SIGTERM", "SIGHUP"])
def test_a_run_whose_agent_is_killed_starts_another_for_its_next_task(
        fleet_factory, background_play, run_tmpdir, tmp_path, ended_agents, signum):
    fleet, inventory = fleet_factory(robots=2)
    release = tmp_path / "release"
    play = background_play(login_play() + RELEASE_TASK + """
    - name: login again
      spot.auth.token:
""", inventory, env={"TMPDIR": str(run_tmpdir)}, args=["-e", "release=%s" % release])
    agent = wait_for_logins(play, fleet, run_tmpdir, release)
    os.kill(agent, signum)
    assert wait_until(lambda: not agents_under(run_tmpdir), GONE_SECONDS), "the agent survived the signal"
    if signum == signal.SIGKILL:
        # A killed agent cleans nothing up; the socket it leaves refuses connections.
        assert session_dirs(run_tmpdir) == [play.session_directory()]
    else:
        assert wait_until(lambda: not spot_auth_entries(run_tmpdir), GONE_SECONDS), \
            "the agent ended without removing its directory and the user's, now empty"
    release.touch()
    assert play.finish() == 0, play.output()[-3000:]
    again = play.results("login again")
    assert sorted(again) == ["robot-001", "robot-002"] and all(result["changed"] for result in again.values())
    assert UNAVAILABLE not in play.output(), "the run fell back to in-process handshakes"
    # The new agent has a memory of its own: it logged in again, with the password.
    assert [[record.kind for record in robot.requests] for robot in fleet] == [["password", "password"]] * 2
    assert_nothing_left(run_tmpdir)


def test_the_directory_of_a_killed_agent_is_removed_by_the_next_run(fleet_factory, background_play, run_playbook, run_tmpdir,
                                                                    tmp_path, ended_agents):
    fleet, inventory = fleet_factory(robots=2)
    release = tmp_path / "release"
    play = background_play(login_play() + RELEASE_TASK, inventory, env={"TMPDIR": str(run_tmpdir)},
                           args=["-e", "release=%s" % release])
    agent = wait_for_logins(play, fleet, run_tmpdir, release)
    killed_run_dir = play.session_directory()
    os.kill(agent, signal.SIGKILL)
    assert wait_until(lambda: not agents_under(run_tmpdir), GONE_SECONDS), "the agent survived SIGKILL"
    release.touch()
    assert play.finish() == 0, play.output()[-3000:]
    # Nobody was left to remove it: it is stale now, named after a run that has ended.
    assert session_dirs(run_tmpdir) == [killed_run_dir]

    run = run_playbook(login_play(), inventory, env={"TMPDIR": str(run_tmpdir)})
    assert run.returncode == 0, run.text[-3000:]
    assert all(result["changed"] for result in run.results("login").values())
    assert UNAVAILABLE not in run.text
    assert_nothing_left(run_tmpdir)


# -- 5. without an agent, the run still gets its tokens ------------------------------------------

AGENT_THAT_DIES = """
import os

try:
    with open("/proc/self/cmdline", "rb") as handle:
        if b"plugin_utils._agent" in handle.read():
            os._exit(3)  # the session agent's interpreter dies before it can say ready
except OSError:
    pass
"""


def sitecustomize_dir(tmp_path, code):
    path = tmp_path / "site"
    path.mkdir()
    (path / "sitecustomize.py").write_text(code)
    return str(path)


@pytest.mark.parametrize("way", ["user directory open to others", "agent dies at start", "session off"])
def test_without_an_agent_the_play_still_gets_its_tokens(fleet_factory, run_playbook, run_tmpdir, tmp_path, ended_agents, way):
    fleet, inventory = fleet_factory(robots=3)
    tmpdir = run_tmpdir
    environment = {"TMPDIR": str(tmpdir)}
    if way == "user directory open to others":
        # This user's, but others may enter it: not used, and not repaired either.
        os.mkdir(str(tmpdir / USER_DIRECTORY))
        os.chmod(str(tmpdir / USER_DIRECTORY), 0o755)
    elif way == "agent dies at start":
        environment["PYTHONPATH"] = sitecustomize_dir(tmp_path, AGENT_THAT_DIES)
    else:
        environment["SPOT_AUTH_SESSION"] = "false"
    run = run_playbook(login_play() + """
    - name: fact
      ansible.builtin.debug:
        msg: "{{ spot_auth.method }} {{ spot_auth.token | length > 100 }}"
""", inventory, env=environment)
    assert run.returncode == 0, run.text[-3000:]
    assert all(result["changed"] for result in run.results("login").values())
    assert {host: result["msg"] for host, result in run.results("fact").items()} == {robot.name: "password True" for robot in fleet}
    assert [robot.request_count for robot in fleet] == [1, 1, 1]
    if way == "session off":
        assert UNAVAILABLE not in run.text, "turning the session off is no reason to warn"
    else:
        assert UNAVAILABLE in run.text
    assert not agents_under(tmpdir)
    if way == "user directory open to others":
        assert spot_auth_entries(tmpdir) == [USER_DIRECTORY] and session_dirs(tmpdir) == [], left_behind(tmpdir)
        assert stat.S_IMODE(os.lstat(str(tmpdir / USER_DIRECTORY)).st_mode) == 0o755
    else:
        assert spot_auth_entries(tmpdir) == [], left_behind(tmpdir)


def test_a_failed_agent_start_leaves_no_directory(fleet_factory, run_playbook, run_tmpdir, tmp_path, ended_agents):
    fleet, inventory = fleet_factory(robots=3)
    run = run_playbook(login_play(), inventory, env={
        "TMPDIR": str(run_tmpdir), "PYTHONPATH": sitecustomize_dir(tmp_path, AGENT_THAT_DIES)})
    assert run.returncode == 0 and UNAVAILABLE in run.text, run.text[-3000:]
    assert all(result["changed"] for result in run.results("login").values())
    # Every worker that tried removed the session directory it made, and the user's directory once empty.
    assert_nothing_left(run_tmpdir, seconds=5)
    assert spot_auth_entries(run_tmpdir) == []


def test_a_long_tmpdir_gives_way_to_tmp(fleet_factory, background_play, tmp_path):
    """``$TMPDIR/spot-auth-<uid>`` over 64 characters: the agent lives in ``/tmp/spot-auth-<uid>`` (shared with other
    runs of this user on the machine, so only this run's own directory is looked at)."""
    fleet, inventory = fleet_factory(robots=2)
    long_tmpdir = tmp_path / ("long-" + "d" * 120)
    long_tmpdir.mkdir()
    release = tmp_path / "release"
    play = background_play(login_play() + RELEASE_TASK + """
    - name: login again
      spot.auth.token:
""", inventory, env={"TMPDIR": str(long_tmpdir)}, args=["-e", "release=%s" % release])
    user_directory = os.path.join("/tmp", USER_DIRECTORY)
    directory = os.path.join("/tmp", play.session_directory())
    agents = []
    try:
        agent = wait_for_logins(play, fleet, "/tmp", release)
        agents = [(agent, start_ticks(agent))]
        assert_private_directory(user_directory)
        assert_private_directory(directory)
        assert stat.S_ISSOCK(os.lstat(os.path.join(directory, _agent.SOCKET_NAME)).st_mode)
        assert spot_auth_entries(long_tmpdir) == [], "nothing in the long TMPDIR"
        release.touch()
        assert play.finish() == 0, play.output()[-3000:]
        assert UNAVAILABLE not in play.output()
        again = play.results("login again")
        assert sorted(again) == ["robot-001", "robot-002"] and not any(result.get("failed") for result in again.values()), again
        assert [robot.request_count for robot in fleet] == [1, 1], "the second login came from the agent's memory"
        gone = wait_until(lambda: not os.path.exists(directory) and not any(alive(pid, ticks) for pid, ticks in agents),
                          GONE_SECONDS)
        assert gone, "the agent or its directory outlived the run"
        assert spot_auth_entries(long_tmpdir) == []
    finally:
        for pid, ticks in agents:
            kill_quietly(pid, ticks)


# -- 6. no secret in any process's argv or environment, nor on disk -------------------------------

ENV_PASSWORD = "Env-Only-Pass-7c41e9"
SSHPASS = "Sshpass-Only-5d20b8"  # a credential of the run that has nothing to do with spot.auth


def test_no_secret_in_command_lines_environments_or_files(fleet_factory, background_play, run_tmpdir, tmp_path, secrets,
                                                          ended_agents):
    secrets.update({ENV_PASSWORD, SSHPASS})
    fleet, inventory = fleet_factory(robots=[{}, {}, {"password": ENV_PASSWORD}])

    def credentials_from_environment(data):
        # robot-003 takes its user and password from BOSDYN_CLIENT_USERNAME / BOSDYN_CLIENT_PASSWORD.
        del spot_hosts(data)["robot-003"]["spot_username"], spot_hosts(data)["robot-003"]["spot_password"]

    edit_inventory(inventory, credentials_from_environment)
    inventory_passwords = {robot.password for robot in fleet if robot.name != "robot-003"}
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    release = tmp_path / "release"
    play = background_play(login_play() + RELEASE_TASK + """
    - name: keep the tokens for the test to search for
      ansible.builtin.copy:
        content: "{{ spot_auth.token }}"
        dest: "%s/{{ inventory_hostname }}"
        mode: "0600"
      no_log: true
""" % token_dir, inventory, env={
        "TMPDIR": str(run_tmpdir), "BOSDYN_CLIENT_USERNAME": "admin", "BOSDYN_CLIENT_PASSWORD": ENV_PASSWORD, "SSHPASS": SSHPASS},
        args=["-e", "release=%s" % release])
    agent = wait_for_logins(play, fleet, run_tmpdir, release)

    def hold_module_runs():  # RELEASE_TASK's wait_for: a worker of the run lives until the release
        table = processes()
        return any(b"AnsiballZ_wait_for" in table[pid][1] for pid in descendants(play.pid, table) if pid in table)

    # The marking task's worker may have ended before the hold task's started: wait for the latter.
    assert wait_until(hold_module_runs, START_SECONDS), "the hold task did not start: %s" % play.output()[-3000:]
    # While the run holds: the run's processes, its agent, and the files in its TMPDIR.
    tree = [play.pid] + descendants(play.pid)
    snapshots = {pid: (read_proc(pid, "cmdline"), read_proc(pid, "environ")) for pid in set(tree + [agent])}
    files_during = files_under(run_tmpdir)
    assert session_dirs(run_tmpdir) == [play.session_directory()]
    release.touch()
    assert play.finish() == 0, play.output()[-3000:]
    assert sorted(os.listdir(str(token_dir))) == ["robot-001", "robot-002", "robot-003"]
    tokens = set()
    for name in os.listdir(str(token_dir)):
        with open(str(token_dir / name)) as handle:
            tokens.add(handle.read())
    assert all(len(token) > 100 for token in tokens)
    secrets.update(tokens)
    assert_nothing_left(run_tmpdir)
    files_after = files_under(run_tmpdir)

    assert len(snapshots) >= 3, "ansible-playbook, a worker and the agent"
    agent_cmdline, agent_environ = snapshots[agent]
    assert agent_cmdline and agent_environ, "the agent's /proc entries were read"
    for name in (b"BOSDYN_CLIENT_PASSWORD=", b"BOSDYN_CLIENT_USERNAME=", b"SSHPASS="):
        assert name not in agent_environ and name in snapshots[play.pid][1], "the run had %s, the agent must not" % name[:-1]
    # The agent's environment is an allowlist: what Python, TLS and gRPC read.
    names = [entry.split(b"=", 1)[0].decode("utf-8", "replace") for entry in agent_environ.split(b"\0") if entry]
    assert "PATH" in names and "TMPDIR" in names, names
    assert [name for name in names if not AGENT_ENVIRONMENT.match(name)] == [], "the agent inherited more than the allowlist"
    every_secret = inventory_passwords | tokens | {ENV_PASSWORD, SSHPASS}
    for pid, (cmdline, environ) in snapshots.items():
        what = "the agent" if pid == agent else "process %d of the run" % pid
        check_no_secret(cmdline.decode("utf-8", "replace"), every_secret, "the command line of " + what)
        # The user exported BOSDYN_CLIENT_PASSWORD and SSHPASS to the run: its own processes hold them, the agent must not.
        in_environment = every_secret if pid == agent else every_secret - {ENV_PASSWORD, SSHPASS}
        check_no_secret(environ.decode("utf-8", "replace"), in_environment, "the environment of " + what)
    for path, data in list(files_during.items()) + list(files_after.items()):
        check_no_secret(data.decode("utf-8", "replace"), every_secret, "file %s" % path)


# -- 7. gRPC only in the agent -------------------------------------------------------------------

AUDIT_SITECUSTOMIZE = """
import os
import socket
import sys

# Written into the file by the test: the agent's environment is an allowlist, a variable would not reach it.
_LOG = @LOG@


def _is_agent():
    try:
        with open("/proc/self/cmdline", "rb") as handle:
            return b"plugin_utils._agent" in handle.read()
    except OSError:
        return False


_AGENT = int(_is_agent())  # forks keep their parent's value: the agent is a fresh interpreter


def _write(kind, detail):
    line = "%d %d %s %s\\n" % (os.getpid(), _AGENT, kind, detail)
    descriptor = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line.encode("utf-8", "replace"))
    finally:
        os.close(descriptor)


def _hook(event, args):
    if event == "import" and (args[0] == "grpc" or str(args[0]).startswith("grpc.")):
        _write("import", args[0])
    elif event == "socket.connect":
        family = getattr(args[0], "family", None)
        name = {socket.AF_INET: "AF_INET", socket.AF_INET6: "AF_INET6", socket.AF_UNIX: "AF_UNIX"}.get(family, str(family))
        _write("connect", "%s %r" % (name, args[1]))


if _LOG:
    sys.addaudithook(_hook)
"""


def test_grpc_is_imported_and_robots_are_reached_only_by_the_agent(fleet_factory, run_playbook, run_tmpdir, tmp_path,
                                                                   ended_agents):
    fleet, inventory = fleet_factory(robots=10)
    log = tmp_path / "audit.log"
    run = run_playbook(login_play() + """
    - name: lookup
      ansible.builtin.debug:
        msg: "{{ lookup('spot.auth.token') | length > 100 }}"
""", inventory, env={"TMPDIR": str(run_tmpdir), "ANSIBLE_FORKS": "5",
                     "PYTHONPATH": sitecustomize_dir(tmp_path, AUDIT_SITECUSTOMIZE.replace("@LOG@", repr(str(log))))})
    assert run.returncode == 0, run.text[-3000:]
    assert all(result["changed"] for result in run.results("login").values())
    assert all(result["msg"] is True for result in run.results("lookup").values())
    assert len(run.results("lookup")) == 10
    assert UNAVAILABLE not in run.text
    # The lookup was answered from the run's memory: one handshake per robot.
    assert [robot.request_count for robot in fleet] == [1] * 10
    events = [line.split(" ", 3) for line in log.read_text().splitlines()]
    agent_pids = {pid for pid, agent, _kind, _detail in events if agent == "1"}
    assert len(agent_pids) == 1, "one agent for the run: %r" % agent_pids
    assert any(agent == "1" and kind == "import" and detail == "grpc" for _pid, agent, kind, detail in events), \
        "the agent imports grpc (and so the hook sees imports)"
    others = [(pid, kind, detail) for pid, agent, kind, detail in events if agent == "0"]
    assert [event for event in others if event[1] == "import"] == [], "grpc imported outside the agent"
    assert [event for event in others if event[1] == "connect" and not event[2].startswith("AF_UNIX")] == [], \
        "a network connection outside the agent"
    # Workers reached the agent through its socket (and so the hook sees connections).
    socket_in = os.path.join(str(run_tmpdir), USER_DIRECTORY, "")
    askers = {pid for pid, kind, detail in others if kind == "connect" and socket_in in detail and "agent.sock" in detail}
    assert len(askers) >= 2, "the workers asked the agent"
    assert_nothing_left(run_tmpdir)


# -- 8. no credential goes to a socket another user planted ------------------------------------------

ATTACKER = """
import errno
import os
import select
import socket
import sys

user_directory, run_name, captured, make_user_directory = sys.argv[1:5]
run_directory = os.path.join(user_directory, run_name)
try:
    if make_user_directory == "yes":
        # Made before the victim's run: mode 0700 like the victim's own would be, only its owner differs.
        os.mkdir(user_directory)
        os.chmod(user_directory, 0o700)
    try:
        os.mkdir(run_directory)
    except FileExistsError:
        pass
    path = os.path.join(run_directory, "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(8)
except OSError as exc:
    print("refused %s" % errno.errorcode.get(exc.errno, exc.errno), flush=True)
    sys.exit(0)
print("listening", flush=True)
connections, received = 0, b""
while True:
    readable, _unused, _unused = select.select([server, sys.stdin], [], [], 120)
    if not readable or sys.stdin in readable:
        break  # told to stop (its stdin closed), or waited long enough
    connection, _unused = server.accept()
    connections += 1
    connection.settimeout(5)
    try:
        while len(received) < 1 << 20:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
            if len(received) >= 8 and len(received) >= 8 + int.from_bytes(received[:8], "big"):
                break
    except OSError:
        pass
    connection.close()
with open(captured, "wb") as handle:
    handle.write(received)
print("connections %d" % connections, flush=True)
"""


@pytest.mark.parametrize("planted", ["user directory made by the other user", "inside this user's directory"])
def test_credentials_never_go_to_a_socket_another_user_planted(
        fleet_factory, background_play, other_user, other_user_python, tmp_path, planted):
    (uid, gid), shared = other_user
    python = other_user_python[0]
    fleet, inventory = fleet_factory(robots=1)
    robot = fleet["robot-001"]
    script = os.path.join(shared, "attacker.py")
    with open(script, "w") as handle:
        handle.write(ATTACKER)
    os.chmod(script, 0o644)
    environment = {"PATH": "/usr/bin:/bin", "HOME": shared}
    release = tmp_path / "release"
    first = planted == "user directory made by the other user"
    if first:
        # The victim's run waits before its first login; the names of its directories are public (uid, pid, start time).
        playbook = """
- hosts: spot
  gather_facts: false
  tasks:
""" + RELEASE_TASK + """
    - name: login
      spot.auth.token:
"""
    else:
        # The victim's run logs in (making its directories, 0700), waits, and logs in again.
        playbook = login_play() + RELEASE_TASK + """
    - name: login again
      spot.auth.token:
"""
    play = background_play(playbook, inventory, env={"TMPDIR": shared}, args=["-e", "release=%s" % release])
    user_directory = os.path.join(shared, USER_DIRECTORY)
    run_directory = os.path.join(shared, play.session_directory())
    if first:
        holding = wait_until(lambda: os.path.exists(str(release) + ".holding") or play.process.poll() is not None, START_SECONDS)
        assert holding and play.process.poll() is None, "the run did not reach its wait: %s" % play.output()[-3000:]
        assert not os.path.exists(user_directory)
    else:
        wait_for_logins(play, fleet, shared, release)
    captured = os.path.join(shared, "captured")
    attacker = subprocess.Popen([python, script, user_directory, os.path.basename(run_directory), captured, "yes" if first else "no"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                user=uid, group=gid, extra_groups=[], env=environment, bufsize=0)
    try:
        said = read_line(attacker.stdout, 60).strip()
        if first:
            assert said == "listening", said
            assert os.lstat(user_directory).st_uid == uid
        else:
            assert said == "refused EACCES", "another user planted something in this user's directory: %r" % said
            assert_private_directory(user_directory)
            assert_private_directory(run_directory)
        release.touch()
        assert play.finish() == 0, play.output()[-3000:]
        if first:
            # The client refused the other user's directory before connecting to anything in it, and logged in itself.
            assert all(result["changed"] for result in play.results("login").values())
            assert UNAVAILABLE in play.output()
            assert robot.request_count == 1
            attacker.stdin.close()
            assert read_line(attacker.stdout, 30).strip() == "connections 0", "the run connected to the other user's socket"
            with open(captured, "rb") as handle:
                data = handle.read()
            assert robot.password.encode() not in data and data == b"", "another user's socket received a credential"
            assert not agents_in(shared)
            # The other user's directory is not this run's to remove.
            assert spot_auth_entries(shared) == [USER_DIRECTORY] and os.lstat(user_directory).st_uid == uid
        else:
            assert UNAVAILABLE not in play.output()
            assert not any(result.get("failed") for result in play.results("login again").values())
            assert robot.request_count == 1, "the second login came from the agent's memory"
            attacker.wait(30)
            assert_nothing_left(shared)
    finally:
        if attacker.poll() is None:
            attacker.kill()
            attacker.wait(30)
