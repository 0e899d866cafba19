# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run's session agent: one local process per ansible-playbook run that does every handshake.

Where: ``$TMPDIR/spot-auth-<uid>/<run pid>-<run start time>/`` holds ``agent.sock`` (a Unix socket)
and ``agent.lock``. Both directories are mode 0700 and checked to be this user's own before anything
in them is used, so no other user can plant a socket where credentials would be sent. The run is the
ansible-playbook process: the parent of a forked worker, or the process itself when a lookup is
templated there.

Start: the first process that needs the agent takes ``agent.lock``, starts a fresh interpreter
(no gRPC state crosses a fork), and waits until it says ``ready`` on a pipe. Nothing secret is in
its command line or environment; credentials travel over the socket only.

Speak: one request per connection, a length-prefixed JSON object each way. The agent answers only
connections from its own user (``SO_PEERCRED``).

End: when the run's process exits (watched through a pidfd), on SIGTERM, SIGINT or SIGHUP, or after
an hour without a request; it removes its directories. Unless the run is gone, it first answers every
request it already has, each within its own deadline. A directory left by a run that is gone (the
agent killed with SIGKILL) is removed by the next run that starts an agent.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import json
import multiprocessing
import os
import re
import select
import signal
import socket
import socketserver
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

from ansible_collections.spot.auth.plugins.module_utils import _errors, _handshake
from ansible_collections.spot.auth.plugins.module_utils._options import AuthSettings
from ansible_collections.spot.auth.plugins.module_utils._process import process_is_alive, process_start_time

PROTOCOL_VERSION = 1
SOCKET_NAME = "agent.sock"
LOCK_NAME = "agent.lock"
START_SECONDS = 10.0
IDLE_SECONDS = 3600.0
_FRAME = struct.Struct("!Q")
_MAX_FRAME = 512 * 1024 * 1024
_RUN_NAME = re.compile(r"^(\d+)-(\d+)$")
# A Unix socket path holds at most 107 bytes: a longer TMPDIR gives way to /tmp.
_MAX_USER_DIRECTORY = 64
# The agent's environment: what Python, TLS and gRPC read, nothing else (no variable holding a credential).
_KEPT_ENVIRONMENT = re.compile(r"^(PATH|HOME|USER|LOGNAME|LANG|LC_\w+|TZ|TMPDIR|TEMP|TMP|PYTHON\w*|SSL_CERT_\w+|GRPC_\w+|"
                               r"LD_LIBRARY_PATH|HTTPS?_PROXY|NO_PROXY|(NO_)?GRPC_PROXY)$", re.IGNORECASE)
# The agent's entry point in a fresh interpreter: argv[1] is the directory holding ansible_collections.
_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
         "from ansible_collections.spot.auth.plugins.plugin_utils._agent import serve; serve(sys.argv[2:])")


class SessionUnavailable(Exception):
    """The agent cannot be reached or started; the message names why, never a secret."""


# -- where the run's agent lives -----------------------------------------------------------------

def run_identity():
    """(pid, start time) of this run: the parent of a forked Ansible worker, else this process."""
    parent = multiprocessing.parent_process()
    pid = parent.pid if parent is not None else os.getpid()
    return pid, process_start_time(pid) or 0


def user_directory():
    """This user's directory of session directories, ``$TMPDIR/spot-auth-<uid>``."""
    name = "spot-auth-%d" % os.getuid()
    path = os.path.join(tempfile.gettempdir(), name)
    return path if len(os.fsencode(path)) <= _MAX_USER_DIRECTORY else os.path.join("/tmp", name)


def session_directory(identity=None):
    pid, start = identity or run_identity()
    return os.path.join(user_directory(), "%d-%d" % (pid, start))


def _check_private_directory(path):
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise SessionUnavailable("cannot use %s (%s)" % (path, exc.strerror)) from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise SessionUnavailable("%s is not a private directory of this user" % path)


def _make_private_directory(path):
    """Create ``path`` (0700) unless it exists, and check it is private; True when it was created here."""
    try:
        os.mkdir(path, 0o700)
        created = True
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise SessionUnavailable("cannot create %s (%s)" % (path, exc.strerror)) from None
        created = False
    _check_private_directory(path)
    return created


def remove_directory(path, names=(SOCKET_NAME, LOCK_NAME)):
    """Remove a session directory, the files ``names`` in it, and the user's directory if now empty."""
    for name in names:
        try:
            os.unlink(os.path.join(path, name))
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        return
    _remove_if_empty(os.path.dirname(path))  # unless another run's directory is still there


def reap_stale_directories():
    """Remove session directories of this user whose run is gone (an agent killed with SIGKILL)."""
    base = user_directory()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        match = _RUN_NAME.match(name)
        if not match or process_is_alive(int(match.group(1)), int(match.group(2))):
            continue
        path = os.path.join(base, name)
        try:
            _check_private_directory(path)
        except (OSError, SessionUnavailable):
            continue
        remove_directory(path)


# -- framing -------------------------------------------------------------------------------------

def send_message(sock, message):
    data = json.dumps(message, separators=(",", ":")).encode("utf-8")
    sock.sendall(_FRAME.pack(len(data)) + data)


def receive_message(sock):
    """The next message on ``sock``; EOFError when the peer closed, ValueError when it is not one."""
    (length,) = _FRAME.unpack(_receive_exactly(sock, _FRAME.size))
    if length > _MAX_FRAME:
        raise ValueError("message of %d bytes is over the limit" % length)
    return json.loads(_receive_exactly(sock, length).decode("utf-8"))


def _receive_exactly(sock, size):
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the peer closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def encode_settings(settings):
    return {name: getattr(settings, name) for name in AuthSettings.__slots__}


def encode_result(result):
    if isinstance(result, _errors.SpotAuthError):
        return {"error": result.to_result()}
    return {"token": result.token, "method": result.method, "warnings": result.warnings}


def decode_result(data):
    if "error" in data:
        return _errors.error_from_result(data["error"])
    return _handshake.Outcome(data["token"], data["method"], data.get("warnings") or ())


# -- the client side: every fork, task and lookup of the run -------------------------------------

def ask(settings_list, concurrency, identity=None):
    """Results of ``settings_list`` from the run's agent (of ``identity``, default this run), starting it if needed.

    Raises SessionUnavailable when no request was handed over; once one was, every failure comes
    back as a result (SessionError when the agent went away).
    """
    # Imported here: _session imports this module at its top.
    from ansible_collections.spot.auth.plugins.plugin_utils._session import deadline_for

    sock = connect(identity)
    try:
        sock.settimeout(30.0)
        try:
            send_message(sock, {"version": PROTOCOL_VERSION, "concurrency": concurrency,
                                "handshakes": [encode_settings(settings) for settings in settings_list]})
        except OSError as exc:
            raise SessionUnavailable("could not send to the agent (%s)" % (exc.strerror or type(exc).__name__)) from None
        sock.settimeout(deadline_for(settings_list, concurrency))
        try:
            answer = receive_message(sock)
            results = [decode_result(item) for item in answer["results"]]
            if len(results) != len(settings_list):
                raise ValueError("wrong number of results")
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            detail = type(exc).__name__
            return [_errors.controller_error("session lost", s.hostname, s.port, detail=detail) for s in settings_list]
    finally:
        sock.close()
    return results


def connect(identity=None):
    """A socket connected to the run's agent; starts the agent when there is none."""
    identity = identity or run_identity()
    directory = session_directory(identity)
    path = os.path.join(directory, SOCKET_NAME)
    created = False
    for attempt in range(3):
        try:
            # Checked before connecting: only this user can have put a socket in a private directory.
            created = _make_private_directory(os.path.dirname(directory)) or created
            sock = _try_connect(path)
            if sock is not None:
                return sock
            _make_private_directory(directory)
            with RunLock(os.path.join(directory, LOCK_NAME)):
                sock = _try_connect(path)
                if sock is not None:
                    return sock
                reap_stale_directories()
                try:
                    _start_agent(directory, identity)
                except SessionUnavailable:
                    remove_directory(directory)
                    raise
        except SessionUnavailable:
            if attempt == 2:
                if created:
                    _remove_if_empty(os.path.dirname(directory))
                raise
            # An agent of this run may have been removing the directories as it exited: look again.
    if created:
        _remove_if_empty(os.path.dirname(directory))
    raise SessionUnavailable("the agent at %s started but does not accept connections" % path)


def _remove_if_empty(directory):
    try:
        os.rmdir(directory)
    except OSError:
        pass


def peer_uid(sock):
    credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", credentials)[1]


def _try_connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(10.0)
        sock.connect(path)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.ENOENT, errno.ECONNREFUSED):
            return None
        raise SessionUnavailable("cannot connect to %s (%s)" % (path, exc.strerror or exc)) from None
    if peer_uid(sock) != os.getuid():
        sock.close()
        raise SessionUnavailable("the socket %s belongs to another user" % path)
    return sock


class RunLock:
    """The run's ``agent.lock``, held to start the agent and by an exiting agent to remove its files.

    Waited for at most START_SECONDS + 5. A lock file removed while waiting (its agent exited) is not
    the run's lock any more: the waiter opens the new one, so two starters never both hold "the" lock.
    """

    def __init__(self, path, create=True):
        self._path = path
        self._create = create
        self._fd = None

    def __enter__(self):
        give_up = time.monotonic() + START_SECONDS + 5
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | (os.O_CREAT if self._create else 0)
        while True:
            try:
                self._fd = os.open(self._path, flags, 0o600)
            except OSError as exc:
                raise SessionUnavailable("cannot open %s (%s)" % (self._path, exc.strerror)) from None
            if self._lock_until(give_up) and self._still_at_path():
                return self
            os.close(self._fd)
            if time.monotonic() > give_up:
                raise SessionUnavailable("cannot lock %s within %d s" % (self._path, START_SECONDS + 5))

    def _lock_until(self, give_up):
        while True:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN) or time.monotonic() > give_up:
                    return False
            time.sleep(0.02)

    def _still_at_path(self):
        try:
            return os.stat(self._path).st_ino == os.fstat(self._fd).st_ino
        except OSError:
            return False

    def __exit__(self, *exc_info):
        os.close(self._fd)  # closing releases the lock


def collection_root():
    """The directory holding ``ansible_collections`` this collection was loaded from."""
    path = os.path.abspath(__file__)
    for _level in range(5):  # plugin_utils, plugins, auth, spot, ansible_collections
        path = os.path.dirname(path)
    if os.path.basename(path) != "ansible_collections":
        raise SessionUnavailable("the collection is not installed under an ansible_collections directory")
    return os.path.dirname(path)


def _start_agent(directory, identity):
    environment = {name: value for name, value in os.environ.items() if _KEPT_ENVIRONMENT.match(name)}
    command = [sys.executable, "-c", _BOOT, collection_root(), directory, str(identity[0]), str(identity[1])]
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   env=environment, close_fds=True, start_new_session=True)
    except OSError as exc:
        raise SessionUnavailable("cannot start %s (%s)" % (sys.executable, exc.strerror or exc)) from None
    try:
        ready, _unused, _unused = select.select([process.stdout], [], [], START_SECONDS)
        line = process.stdout.readline(200).decode("utf-8", "replace").strip() if ready else None
    finally:
        process.stdout.close()
    if line == "ready":
        return
    if process.poll() is None:
        process.kill()
    status = process.wait()
    if line is None:
        reason = "no answer within %d s" % START_SECONDS
    else:
        reason = line or "it exited with status %s before it was ready" % status
    raise SessionUnavailable("the agent did not start: %s" % reason)


# -- the agent process ---------------------------------------------------------------------------

class _Handler(socketserver.BaseRequestHandler):

    def handle(self):
        server = self.server
        server.touch()
        sock = self.request
        if peer_uid(sock) != os.getuid():
            return  # another user: closed without a word
        sock.settimeout(30.0)
        try:
            request = receive_message(sock)
            if request.get("version") != PROTOCOL_VERSION:
                raise ValueError("protocol version %r" % request.get("version"))
            settings_list = [AuthSettings(**values) for values in request["handshakes"]]
            concurrency = int(request["concurrency"])
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            return
        results = server.session.obtain_many(settings_list, concurrency)
        server.touch()
        try:
            send_message(sock, {"results": [encode_result(result) for result in results]})
        except OSError:
            pass  # the asker is gone (its task was interrupted); the memory keeps what was learnt


class _AgentServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    request_queue_size = 128

    def __init__(self, path, session):
        self.session = session
        self.last_request = time.monotonic()
        self._answering = []  # called from the accept loop, then from the exiting agent: never both at once
        socketserver.UnixStreamServer.__init__(self, path, _Handler)

    def process_request(self, request, client_address):
        """Answer in a daemon thread (once the run is gone nobody waits), kept so a stopping agent can finish it."""
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        self._answering = [other for other in self._answering if other.is_alive()] + [thread]
        thread.start()

    def wait_for_answers(self):
        for thread in self._answering:
            thread.join()  # each handler is bounded by its socket timeout and its handshakes' deadline

    def touch(self):
        self.last_request = time.monotonic()

    def answer_queued(self):
        """Take the connections still queued once the accept loop stopped and the socket's path is gone."""
        self.socket.setblocking(False)
        while True:
            try:
                connection, address = self.socket.accept()
            except OSError:
                return  # the queue is empty: with the path removed, nothing more can arrive
            connection.setblocking(True)
            self.process_request(connection, address)


def serve(argv):
    """Run the agent: ``argv`` is the session directory, the run's pid and its start time."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_args: stop.set())
    directory, run_pid, run_start = argv[0], int(argv[1]), int(argv[2])
    os.umask(0o077)
    path = os.path.join(directory, SOCKET_NAME)
    try:
        from ansible_collections.spot.auth.plugins.plugin_utils._session import Session

        session = Session()
        watch = _watch_process(run_pid, run_start)
        if os.path.exists(path):
            os.unlink(path)  # a socket left by an agent of this run that was killed
        server = _AgentServer(path, session)
        socket_inode = os.stat(path).st_ino
    except Exception as exc:
        sys.stdout.write("%s: %s\n" % (type(exc).__name__, exc))
        sys.stdout.flush()
        raise SystemExit(1) from None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
    thread.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # the starter stops reading; nothing else is written
    run_gone = False
    try:
        while not stop.is_set() and time.monotonic() - server.last_request <= IDLE_SECONDS:
            run_gone = watch(1.0)
            if run_gone:
                break
    finally:
        _stop_serving(server, directory, socket_inode, answer=not run_gone)


def _stop_serving(server, directory, socket_inode, answer=True):
    """Close the agent and remove its files, under the run's lock so no starter of a new agent races it.

    With ``answer``, every request it accepted, or that was queued before its socket's path went, is
    answered; a new agent may already serve new requests meanwhile.
    """
    lock = RunLock(os.path.join(directory, LOCK_NAME), create=False)
    try:
        lock.__enter__()
    except SessionUnavailable:
        lock = None  # no lock file (nothing to guard) or held too long: remove only what is ours
    try:
        path = os.path.join(directory, SOCKET_NAME)
        try:
            if os.stat(path).st_ino == socket_inode:
                os.unlink(path)  # a new request now starts a new agent (after this lock is released)
        except OSError:
            pass
        server.shutdown()
        if answer:
            server.answer_queued()
        server.server_close()
        if lock is not None:
            remove_directory(directory, names=(LOCK_NAME,))  # waiters on this lock then open a new one
    finally:
        if lock is not None:
            lock.__exit__()
    if answer:
        server.wait_for_answers()


def _watch_process(pid, start):
    """A function waiting up to N seconds that returns True once process ``pid`` has exited."""
    if not process_is_alive(pid, start):
        raise SessionUnavailable("the run's process %d is gone" % pid)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        def poll(seconds):
            time.sleep(seconds)
            return not process_is_alive(pid, start)
        return poll

    def wait(seconds):
        try:
            readable, _unused, _unused = select.select([pidfd], [], [], seconds)
        except InterruptedError:
            return False
        return bool(readable)
    return wait
