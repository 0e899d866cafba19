# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: robots on 127.0.0.1 over real gRPC+TLS, with certificates the tests make."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import socket
import struct
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The simulator ships inside the collection; its CA helpers make the certificates of these tests.
sys.path.insert(0, os.path.join(COLLECTION_ROOT, "simulator"))

from spot_auth_sim.pki import CertificateAuthority  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.spot.auth.plugins.module_utils import _wire  # noqa: E402  pylint: disable=wrong-import-position

PASSWORD = "pw-Secret-5f1c2a"
TOKEN = "header.eyJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.sig-Secret-77aa"
# Claims an expiry in 2100 and no issue time: trusted for the robot's 12-hour lifetime from when it was obtained.
MINTED = "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.minted-Secret-93bd"


class Pki:
    """A trusted CA with a good robot certificate, plus the certificates of misconfigured robots."""

    def __init__(self):
        self.ca = CertificateAuthority("spot.auth unit-test CA")
        self.good = self.ca.issue_server_certificate()
        self.wrong_name = self.ca.issue_server_certificate(["not-the-authority.example"])
        self.other_ca = CertificateAuthority("an unrelated CA")
        self.untrusted = self.other_ca.issue_server_certificate()

    @property
    def roots(self):
        return self.ca.cert_pem


def respond(status="STATUS_OK", header_code="CODE_OK", token=MINTED, with_header=True, header_message=""):
    """A handler answering every request with the given response fields (names or numbers)."""
    def handler(request, context):
        response = _wire.messages.GetAuthTokenResponse()
        if with_header:
            response.header.error.code = header_code
            if header_message:
                response.header.error.message = header_message
        response.status = status
        if token:
            response.token = token
        return response.SerializeToString()
    return handler


def abort(code, details):
    def handler(request, context):
        context.abort(code, details)
    return handler


class ScriptedRobot:
    """A gRPC+TLS auth service on 127.0.0.1 whose answers the test scripts.

    ``handlers`` is a list: call N is answered by handlers[min(N, last)]. Every request received is
    kept (parsed) in ``requests``.
    """

    def __init__(self, certificate, handlers, register_service=True, port=0):
        self.handlers = list(handlers)
        self.requests = []
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        if register_service:
            method = grpc.unary_unary_rpc_method_handler(self._handle)  # raw bytes in and out
            self.server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(_wire.SERVICE_NAME, {_wire.METHOD_NAME: method}),))
        credentials = grpc.ssl_server_credentials([(certificate.key_pem, certificate.cert_pem)])
        self.port = self.server.add_secure_port("127.0.0.1:%d" % port, credentials)
        self.server.start()

    def _handle(self, raw_request, context):
        request = _wire.messages.GetAuthTokenRequest.FromString(raw_request)
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
        return self.handlers[min(index, len(self.handlers) - 1)](request, context)

    def stop(self):
        self.server.stop(grace=None).wait(5)


@pytest.fixture(scope="session")
def pki():
    return Pki()


@pytest.fixture
def robot_factory(pki):
    """robot_factory(*handlers, certificate=None, port=0) -> ScriptedRobot, stopped after the test."""
    robots = []

    def make(*handlers, certificate=None, register_service=True, port=0):
        robot = ScriptedRobot(certificate or pki.good, handlers or [respond()], register_service, port)
        robots.append(robot)
        return robot

    yield make
    for robot in robots:
        robot.stop()


def sleeper(seconds, then):
    """A handler that answers like ``then`` after ``seconds``."""
    def handler(request, context):
        time.sleep(seconds)
        return then(request, context)
    return handler


class NxdomainServer:
    """A DNS server on 127.0.0.1 that answers NXDOMAIN to every query, so name-resolution
    failures can be tested without sending a packet off this machine."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        deadline = time.monotonic() + 600  # bounded even if the test never stops it
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                query, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            if len(query) < 12:
                continue
            flags = 0x8000 | (query[2] & 0x79) << 8 | 0x0080 | 3  # QR, opcode+RD copied, RA, NXDOMAIN
            header = query[:2] + struct.pack(">HHHHH", flags, 1, 0, 0, 0)
            question_end = query.index(b"\x00", 12) + 5
            self.sock.sendto(header + query[12:question_end], peer)

    def stop(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def nxdomain_server():
    server = NxdomainServer()
    yield server.port
    server.stop()
