# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Robots that misbehave below gRPC or answer with hostile content: every one ends in a typed error within the
time bound, and what the robot said is shown escaped."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket
import ssl
import struct
import threading
import time
import unicodedata
from concurrent.futures import TimeoutError as FutureTimeoutError

import grpc
import pytest

from ansible_collections.spot.auth.plugins.module_utils import _errors, _handshake
from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient, worst_case_seconds
from ansible_collections.spot.auth.plugins.module_utils._options import settings_from
from ansible_collections.spot.auth.tests.unit.conftest import PASSWORD, abort, respond


class RawRobot:
    """A TCP listener on 127.0.0.1 that treats each connection with ``behaviour(sock)``."""

    def __init__(self, behaviour, tls_certificate=None):
        self.behaviour = behaviour
        self.connections = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.context = None
        if tls_certificate is not None:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.set_alpn_protocols(["h2"])
            self.context.load_cert_chain(*tls_certificate)
        self._stop = threading.Event()
        self._open = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                sock, dummy = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            self._open.append(sock)
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _handle(self, sock):
        try:
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_side=True)
                self._open.append(sock)
            self.behaviour(sock, self._stop)
        except (OSError, ssl.SSLError):
            pass

    def stop(self):
        self._stop.set()
        self.listener.close()
        for sock in self._open:
            try:
                sock.close()
            except OSError:
                pass
        self._thread.join(2)


def go_silent(sock, stop):
    stop.wait(30)


def read_then_go_silent(sock, stop):
    sock.settimeout(0.2)
    deadline = time.monotonic() + 30
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return
        except socket.timeout:
            continue


def reset(sock, stop):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def garbage(sock, stop):
    sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello" * 10)
    read_then_go_silent(sock, stop)


@pytest.fixture(scope="module")
def cert_files(pki, tmp_path_factory):
    directory = tmp_path_factory.mktemp("robot-cert")
    (directory / "cert.pem").write_bytes(pki.good.cert_pem)
    (directory / "key.pem").write_bytes(pki.good.key_pem)
    return str(directory / "cert.pem"), str(directory / "key.pem")


@pytest.fixture
def raw_robot(cert_files):
    robots = []

    def make(behaviour, tls=True):
        robot = RawRobot(behaviour, cert_files if tls else None)
        robots.append(robot)
        return robot

    yield make
    for robot in robots:
        robot.stop()


CASES = [
    # (behaviour, speaks TLS, expected error type)
    (go_silent, False, _errors.TimedOutError),  # accepts TCP, never starts TLS
    (read_then_go_silent, True, _errors.TimedOutError),  # TLS done, then stops answering mid-handshake
    (reset, False, _errors.UnableToConnectToRobotError),  # resets every connection
    (garbage, True, _errors.UnableToConnectToRobotError),  # speaks HTTP/1.1 instead of gRPC
]


@pytest.mark.parametrize("behaviour, tls, error_class", CASES, ids=[case[0].__name__ for case in CASES])
def test_misbehaving_robot_gives_a_typed_error_within_the_bound(raw_robot, pki, behaviour, tls, error_class):
    robot = raw_robot(behaviour, tls)
    timeout, retries = 0.5, 2
    with AuthClient("127.0.0.1", robot.port, root_certificates=pki.roots, timeout=timeout, retries=retries) as client:
        started = time.monotonic()
        with pytest.raises(_errors.SpotAuthError) as info:
            client.auth("admin", PASSWORD)
        elapsed = time.monotonic() - started
    assert isinstance(info.value, error_class), info.value.message
    assert elapsed <= worst_case_seconds(timeout, retries) + 1.0
    assert PASSWORD not in info.value.message
    assert robot.connections >= 1


# -- robots that answer over gRPC, with bytes meant for the user's terminal ---------------------------

TERMINAL_ATTACK = ("\x1b[2J\x1b[H fake PLAY RECAP ******\r\nrobot-001 : ok=1 changed=0 unreachable=0 failed=0\n"
                   "\x1b]0;owned\x07\u202edetacilpmoc\u2028\x00")
TERMINAL_ATTACK_SHOWN = "\\x1b[2J\\x1b[H fake PLAY RECAP ****** robot-001 : ok=1 changed=0 unreachable=0 failed=0 " \
                        "\\x1b]0;owned\\x07\\u202edetacilpmoc\\u2028\\x00"
UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


def settled(future, bound):
    """The token or the error ``future`` ends in; a test failure if it is still pending after ``bound`` seconds."""
    try:
        return future.result(timeout=bound)
    except FutureTimeoutError:
        pytest.fail("the handshake was still pending %.1f s after it started" % bound)
    except _errors.SpotAuthError as error:
        return error


def assert_typed_and_safe(error, error_class):
    assert isinstance(error, error_class), repr(error)
    assert error.error_type in _errors.error_types()
    assert "\x1b" not in error.message
    assert not [char for char in error.message if unicodedata.category(char) in UNSAFE_CATEGORIES], ascii(error.message)
    assert len(error.message) <= 400
    assert PASSWORD not in error.message


def ask(robot, pki, timeout=5, retries=0):
    """The outcome of one handshake; these robots answer at once, so the deadline only guards a stalled box."""
    with AuthClient("127.0.0.1", robot.port, root_certificates=pki.roots, timeout=timeout, retries=retries) as client:
        started = time.monotonic()
        got = settled(client.auth_async("admin", PASSWORD), worst_case_seconds(timeout, retries) + 1.0)
        assert time.monotonic() - started <= worst_case_seconds(timeout, retries) + 1.0
    return got


@pytest.fixture(scope="module")
def ca_file(pki, tmp_path_factory):
    path = tmp_path_factory.mktemp("robot-ca") / "ca.pem"
    path.write_bytes(pki.roots)
    return str(path)


UNUSABLE_TOKENS = [
    "t\u00f8ken", "two words", "tab\tbed", "\x1b[2J\x1b[Htoken", "\u202etoken", "tok\x00en", "token\r\n", "\ufefftoken",
    "\uff54\uff4f\uff4b\uff45\uff4e", "A" * 16385, TERMINAL_ATTACK,
]


@pytest.mark.parametrize("token", UNUSABLE_TOKENS, ids=lambda token: ascii(token)[:24])
def test_status_ok_with_an_unusable_token_is_a_malformed_response(robot_factory, pki, ca_file, tmp_path, token):
    robot = robot_factory(respond(token=token))
    got = ask(robot, pki)
    assert_typed_and_safe(got, _errors.MalformedResponseError)
    assert "printable ASCII" in got.message

    cache_dir = tmp_path / "cache"
    settings = settings_from({"hostname": "127.0.0.1", "port": robot.port, "username": "admin", "password": PASSWORD,
                              "ca_cert": ca_file, "token_cache": str(cache_dir), "timeout": 0.5, "retries": 0})
    with settings.client() as client:
        outcome = settled(_handshake.obtain_async(settings, client), worst_case_seconds(0.5, 0) + 1.0)
    assert_typed_and_safe(outcome, _errors.MalformedResponseError)
    assert list(cache_dir.iterdir()) == []  # never cached


HEADER_CODES = [
    ("CODE_INTERNAL_SERVER_ERROR", _errors.InternalServerError),
    ("CODE_INVALID_REQUEST", _errors.InvalidRequestError),
    ("CODE_UNSPECIFIED", _errors.UnsetStatusError),
    (77, _errors.ResponseError),
]


@pytest.mark.parametrize("header_code, error_class", HEADER_CODES, ids=[str(code[0]) for code in HEADER_CODES])
def test_header_error_message_with_terminal_controls_is_shown_escaped(robot_factory, pki, header_code, error_class):
    robot = robot_factory(respond(header_code=header_code, status="STATUS_UNKNOWN", header_message=TERMINAL_ATTACK))
    got = ask(robot, pki)
    assert_typed_and_safe(got, error_class)
    assert got.message.endswith("(robot says: %s)" % TERMINAL_ATTACK_SHOWN)


def test_header_error_message_of_60_kb_is_shown_capped(robot_factory, pki):
    robot = robot_factory(respond(header_code="CODE_INTERNAL_SERVER_ERROR", header_message=TERMINAL_ATTACK + "\x1b[31mA" * 10000))
    got = ask(robot, pki)
    assert_typed_and_safe(got, _errors.InternalServerError)
    assert "(robot says: \\x1b[2J\\x1b[H fake PLAY RECAP" in got.message and got.message.endswith("...)")


def test_header_error_message_echoing_the_password_is_masked(robot_factory, pki):
    robot = robot_factory(respond(header_code="CODE_INVALID_REQUEST", header_message="password %s\r\nis not allowed" % PASSWORD))
    got = ask(robot, pki)
    assert_typed_and_safe(got, _errors.InvalidRequestError)
    assert got.message.endswith("(robot says: password ******** is not allowed)")


ABORT_CODES = [
    (grpc.StatusCode.PERMISSION_DENIED, _errors.PermissionDeniedError, 0),
    (grpc.StatusCode.UNAUTHENTICATED, _errors.UnauthenticatedError, 0),
    (grpc.StatusCode.DEADLINE_EXCEEDED, _errors.TimedOutError, 0),
    (grpc.StatusCode.UNAVAILABLE, _errors.UnableToConnectToRobotError, 1),  # retried once, then reported
    (grpc.StatusCode.INTERNAL, _errors.RpcError, 0),
    (grpc.StatusCode.UNKNOWN, _errors.RpcError, 0),
]


@pytest.mark.parametrize("code, error_class, retries", ABORT_CODES, ids=[code[0].name for code in ABORT_CODES])
def test_abort_details_with_terminal_controls_are_shown_escaped(robot_factory, pki, code, error_class, retries):
    robot = robot_factory(abort(code, TERMINAL_ATTACK))
    got = ask(robot, pki, retries=retries)
    assert_typed_and_safe(got, error_class)
    assert got.message.endswith("(%s)" % TERMINAL_ATTACK_SHOWN)
    assert len(robot.requests) == retries + 1


def test_abort_details_of_5_kb_are_shown_escaped_and_capped(robot_factory, pki):
    # Below gRPC's 8 KiB metadata limit, so the details reach the client whole.
    robot = robot_factory(abort(grpc.StatusCode.UNKNOWN, TERMINAL_ATTACK + "\x1b[31mA" * 600))
    got = ask(robot, pki)
    assert_typed_and_safe(got, _errors.RpcError)
    assert "(\\x1b[2J\\x1b[H fake PLAY RECAP" in got.message and got.message.endswith("...)")


def test_abort_details_of_100_kb_end_in_a_typed_error(robot_factory, pki):
    # Beyond the metadata limit: gRPC drops the details and reports the size; still one typed error in time.
    robot = robot_factory(abort(grpc.StatusCode.UNKNOWN, TERMINAL_ATTACK + "A" * 100 * 1024))
    got = ask(robot, pki)
    assert_typed_and_safe(got, _errors.SpotAuthError)
    assert got.error_type != "RpcError"


def test_handler_exception_text_is_shown_escaped(robot_factory, pki):
    def explode(request, context):
        raise RuntimeError(TERMINAL_ATTACK + " " + PASSWORD)

    robot = robot_factory(explode)
    got = ask(robot, pki)
    assert_typed_and_safe(got, _errors.RpcError)
    assert "\\x1b[2J\\x1b[H fake PLAY RECAP" in got.message
