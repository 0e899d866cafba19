# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Robots that misbehave below gRPC: every one ends in a typed error within the time bound."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import socket
import ssl
import struct
import threading
import time

import pytest

from ansible_collections.spot.auth.plugins.module_utils import _errors
from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient, worst_case_seconds
from ansible_collections.spot.auth.tests.unit.conftest import PASSWORD


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
