# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Spot auth handshake over gRPC+TLS: one robot, one client.

``AuthClient`` mirrors ``bosdyn.client.auth.AuthClient`` (``auth``, ``auth_with_token`` and their
``_async`` forms) so SDK users recognise it, and adds what the SDK lacks: a deadline on every call,
bounded retries with jittered exponential backoff for transient failures only (never for a refused
login, which would feed the robot's lockout), typed errors from the table in ``_errors``, and
concurrency from one thread (the ``_async`` forms return futures driven by gRPC's own callbacks).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import os
import random
import socket
import ssl
import stat
import threading
import traceback
from concurrent.futures import Future, InvalidStateError

from ansible_collections.spot.auth.plugins.module_utils import _errors, _wire
from ansible_collections.spot.auth.plugins.module_utils._root_ca import BOSTON_DYNAMICS_ROOT_CA_PEM
from ansible_collections.spot.auth.plugins.module_utils._tokens import usable_token
from ansible_collections.spot.auth.plugins.module_utils._version import COLLECTION_VERSION

# Imported on first use, so a process that only asks the run's session (a forked Ansible worker)
# never loads gRPC.
grpc = None


def import_grpc():
    """The grpc module; ImportError with the traceback when grpcio is missing."""
    global grpc
    if grpc is None:
        # grpc reads its log level at import. Its C core would print to the controller's stderr; every
        # failure it could report reaches the user as a typed error instead, so keep it quiet.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        try:
            import grpc as module
        except ImportError:
            raise ImportError("the grpcio Python package is required:\n" + traceback.format_exc()) from None
        grpc = module
    return grpc


def grpc_import_error():
    """The traceback of a failed grpc import, or None when grpcio is usable."""
    try:
        import_grpc()
    except ImportError as exc:
        return str(exc)
    return None


DEFAULT_PORT = 443
DEFAULT_AUTHORITY = "auth.spot.robot"
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
BACKOFF_BASE = 0.25
BACKOFF_MAX = 4.0
# An auth answer is well under 4 KiB; a robot sending more is broken or hostile.
MAX_MESSAGE_BYTES = 64 * 1024


def default_client_name():
    return "spot.auth/%s@%s" % (COLLECTION_VERSION, socket.gethostname())


def backoff_delay(attempt, base=BACKOFF_BASE, cap=BACKOFF_MAX):
    """Seconds to wait before retry number ``attempt`` (0-based): full-jitter exponential backoff."""
    return random.uniform(0.5, 1.0) * min(cap, base * (2 ** attempt))


def worst_case_seconds(timeout, retries, cap=BACKOFF_MAX):
    """Upper bound of one handshake's duration: every attempt times out and every backoff is maximal."""
    return (retries + 1) * timeout + sum(min(cap, BACKOFF_BASE * 2 ** n) for n in range(retries))


MAX_CA_BUNDLE_BYTES = 1024 * 1024
_CA_BUNDLES = {}  # (path, inode, mtime, size) -> PEM bytes: one read per file and process, not one per robot
_PEM_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PEM_END = b"-----END CERTIFICATE-----"


def read_ca_bundle(path):
    """The certificates of the PEM bundle at ``path``; InvalidOptionError when it is unusable.

    Only a regular file is opened, and never in a way that can block (a FIFO or a device is refused
    before any read). Every certificate block must parse as X.509, at most 1 MiB in all.
    """
    def refuse(reason):
        return _errors.InvalidOptionError("ca_cert", "%s %s" % (path, reason))

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise refuse("is not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise refuse("cannot be read (%s)" % (exc.strerror or exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced between the checks
            raise refuse("is not a regular file")
        key = (path, info.st_ino, info.st_mtime_ns, info.st_size)
        if key in _CA_BUNDLES:
            return _CA_BUNDLES[key]
        if info.st_size > MAX_CA_BUNDLE_BYTES:
            raise refuse("is larger than the 1 MiB a CA bundle may have")
        chunks = []
        size = 0
        while size <= MAX_CA_BUNDLE_BYTES:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise refuse("cannot be read (%s)" % (exc.strerror or exc)) from None
    finally:
        os.close(fd)
    if size > MAX_CA_BUNDLE_BYTES:
        raise refuse("is larger than the 1 MiB a CA bundle may have")
    blocks = _certificate_blocks(b"".join(chunks))
    if not blocks:
        raise refuse("holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    for number, block in enumerate(blocks, 1):
        try:
            if block is None:
                raise ValueError("no END line")
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=block.decode("ascii"))
        except (ssl.SSLError, ValueError, UnicodeDecodeError):
            raise refuse("holds a certificate block that is not a valid X.509 certificate (block %d of %d)"
                         % (number, len(blocks))) from None
    _CA_BUNDLES[key] = data = b"\n".join(blocks) + b"\n"
    return data


def _certificate_blocks(data):
    """The certificate blocks of PEM ``data`` in one pass (None for a block that never ends); text between is skipped."""
    blocks = []
    current = None
    for line in data.splitlines():
        line = line.strip()
        if line == _PEM_BEGIN:
            if current is not None:
                blocks.append(None)  # a BEGIN inside a block
            current = [line]
        elif current is not None:
            current.append(line)
            if line == _PEM_END:
                blocks.append(b"\n".join(current))
                current = None
    if current is not None:
        blocks.append(None)
    return blocks


def interpret_response(response, hostname=None, port=None, secrets=()):
    """(error, token) of a decoded GetAuthTokenResponse; exactly one of them is None."""
    header_code, header_message = "CODE_UNSPECIFIED", ""
    if response.HasField("header"):
        header_code = _wire.enum_name(response.header.error, "code")
        header_message = response.header.error.message
    error = _errors.error_for_response(header_code, _wire.enum_name(response, "status"), hostname, port,
                                       header_message=header_message, secrets=secrets)
    if error is None and not response.token:
        error = _errors.malformed_response("token missing", hostname, port)
    elif error is None and not usable_token(response.token):
        error = _errors.malformed_response("token unusable", hostname, port)
    return error, (None if error else response.token)


def settle(future, result=None, error=None):
    """Resolve ``future`` unless something already did (a completion path must never raise)."""
    if future.done():
        return
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass


class AuthClient:
    """Gets user tokens from one robot's auth service.

    :param hostname: the robot's address (IP or DNS name); the TLS name checked is ``authority``.
    :param root_certificates: PEM bytes of the trusted roots (default: the Boston Dynamics root CA).
    :param validate_certs: False talks to a robot whose CA you do not have (the caller must warn).
    :param retries: extra attempts for retryable errors; 0 disables retrying.
    """

    def __init__(self, hostname, port=DEFAULT_PORT, root_certificates=None, validate_certs=True,
                 authority=DEFAULT_AUTHORITY, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES,
                 client_name=None):
        import_grpc()
        self.hostname = hostname
        self.port = port
        self.authority = authority
        self.timeout = timeout
        self.retries = retries
        self.validate_certs = validate_certs
        self.client_name = client_name or default_client_name()
        if root_certificates is None:
            root_certificates = BOSTON_DYNAMICS_ROOT_CA_PEM.encode("ascii")
        self._root_certificates = root_certificates
        self._lock = threading.Lock()
        self._channel = None
        self._relay = None
        self._call = None

    def __repr__(self):
        return "AuthClient(%s:%s, authority=%s)" % (self.hostname, self.port, self.authority)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def target(self):
        host = self.hostname
        try:
            if ipaddress.ip_address(host).version == 6:
                host = "[%s]" % host
        except ValueError:
            pass  # a DNS name (or a gRPC target prefix such as dns://server/name)
        return "%s:%s" % (host, self.port)

    # -- the SDK-shaped surface -------------------------------------------------------------------

    def auth(self, username, password, app_token=None, timeout=None):
        """Log in with a username and password; returns the user token."""
        return self.auth_async(username, password, app_token=app_token, timeout=timeout).result()

    def auth_with_token(self, token, app_token=None, timeout=None):
        """Re-mint a user token; returns a new token that expires later."""
        return self.auth_with_token_async(token, app_token=app_token, timeout=timeout).result()

    def auth_async(self, username, password, app_token=None, timeout=None):
        """Like ``auth``; returns a Future of the token."""
        request = _wire.build_request(self.client_name, username=username, password=password, app_token=app_token)
        return self._call_async(request, (password, app_token), timeout)

    def auth_with_token_async(self, token, app_token=None, timeout=None):
        """Like ``auth_with_token``; returns a Future of the new token."""
        request = _wire.build_request(self.client_name, token=token, app_token=app_token)
        return self._call_async(request, (token, app_token), timeout)

    def close(self):
        with self._lock:
            self._close_channel()

    # -- transport --------------------------------------------------------------------------------

    def _channel_options(self):
        return [
            ("grpc.ssl_target_name_override", self.authority),
            # A private subchannel pool: a failed attempt's reconnect backoff must not delay the retry.
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]

    def _open_channel(self):
        if self.validate_certs:
            credentials = grpc.ssl_channel_credentials(root_certificates=self._root_certificates)
            channel = grpc.secure_channel(self.target, credentials, options=self._channel_options())
        else:
            from ansible_collections.spot.auth.plugins.module_utils._tls_relay import UnverifiedTlsRelay
            self._relay = UnverifiedTlsRelay(self.hostname, self.port, self.authority)
            options = [("grpc.default_authority", self.authority)] + self._channel_options()[1:]
            channel = grpc.insecure_channel(self._relay.target, options=options)
        self._channel = channel
        self._call = channel.unary_unary(
            _wire.GET_AUTH_TOKEN_PATH,
            request_serializer=_wire.serialize,
            response_deserializer=_wire.parse_response,
        )

    def _close_channel(self):
        if self._channel is not None:
            self._channel.close()
        if self._relay is not None:
            self._relay.close()
        self._channel = self._relay = self._call = None

    def _start_call(self, request, timeout, fresh_channel):
        with self._lock:
            if fresh_channel:
                self._close_channel()
            if self._call is None:
                self._open_channel()
            return self._call.future(request, timeout=timeout)

    # -- one handshake with retries ---------------------------------------------------------------

    def _call_async(self, request, secrets, timeout):
        """Run the RPC, retrying retryable failures; the Future resolves to the token or raises."""
        timeout = self.timeout if timeout is None else timeout
        outcome = Future()
        attempt = [0]

        def start(fresh_channel=False):
            try:
                call = self._start_call(request, timeout, fresh_channel)
                call.add_done_callback(finish)
            except Exception as exc:  # channel set-up failed: report it as the RPC failure it is
                settle(outcome, error=self._unexpected(exc, secrets))

        def finish(call):
            # gRPC swallows what a callback raises, so every path here ends by settling the outcome.
            try:
                error, token = self._outcome(call, secrets)
                if error is None:
                    settle(outcome, token)
                elif error.retryable and attempt[0] < self.retries:
                    delay = backoff_delay(attempt[0])
                    attempt[0] += 1
                    # Reconnect from scratch after a connection failure rather than wait out gRPC's backoff.
                    fresh = isinstance(error, _errors.UnableToConnectToRobotError)
                    timer = threading.Timer(delay, start, kwargs={"fresh_channel": fresh})
                    timer.daemon = True
                    timer.start()
                else:
                    settle(outcome, error=error)
            except Exception as exc:
                settle(outcome, error=self._unexpected(exc, secrets))

        start()
        return outcome

    def _outcome(self, call, secrets):
        """(error, token) of a finished call; exactly one of them is None."""
        try:
            response = call.result()
        except grpc.RpcError as exc:
            code = exc.code()
            return _errors.error_for_grpc(code.name if code else None, exc.details(), self.hostname, self.port, secrets), None
        return interpret_response(response, self.hostname, self.port, secrets)

    def _unexpected(self, exc, secrets):
        return _errors.unexpected_error(exc, self.hostname, self.port, secrets)
