# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every way a Spot auth handshake can fail, as data.

``ERROR_TABLE`` maps each response header error, response status and gRPC failure to an error
type, whether retrying can help, and a one-line message. The exception classes mirror the names
of ``bosdyn.client`` so SDK users recognise them; each carries the structured fields a playbook
branches on (``error_type``, ``retryable``, ``status``, ``grpc_code``, ``hostname``).
Messages never contain a password or token: they are built from the table and the robot address,
plus what the robot or gRPC said, which passes through ``sanitize`` (secrets masked, control
characters escaped, length capped) because a robot is untrusted input.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import re
import unicodedata


class SpotAuthError(Exception):
    """Base of every error this collection raises about a robot."""

    def __init__(self, message, retryable=False, status=None, grpc_code=None, hostname=None):
        super(SpotAuthError, self).__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.grpc_code = grpc_code
        self.hostname = hostname

    @property
    def error_type(self):
        return type(self).__name__

    def to_result(self):
        """The structured fields of a failed task or lookup."""
        return {
            "msg": self.message,
            "error_type": self.error_type,
            "retryable": self.retryable,
            "status": self.status,
            "grpc_code": self.grpc_code,
            "hostname": self.hostname,
        }

    def __repr__(self):
        return "%s(%r)" % (self.error_type, self.message)


class InvalidOptionError(SpotAuthError):
    """An option has a value the client cannot use; raised before any network call."""

    def __init__(self, option, expected):
        super(InvalidOptionError, self).__init__("option %s: %s" % (option, expected))
        self.option = option


class ResponseError(SpotAuthError):
    """The robot answered, and the answer is a failure."""


class InvalidRequestError(ResponseError):
    """The robot found the request malformed (header CODE_INVALID_REQUEST)."""


class ServerError(ResponseError):
    """The robot reported a failure of its own."""


class InternalServerError(ServerError):
    """Header CODE_INTERNAL_SERVER_ERROR."""


class UnsetStatusError(ServerError):
    """The answer carries no status or header code (STATUS_UNKNOWN, CODE_UNSPECIFIED)."""


class MalformedResponseError(ResponseError):
    """The robot's answer is not a well-formed GetAuthTokenResponse."""


class AuthResponseError(ResponseError):
    """The auth service refused the credentials."""


class InvalidLoginError(AuthResponseError):
    """Username or password is invalid."""


class InvalidTokenError(AuthResponseError):
    """The user token is expired, malformed, for another robot or predates a password change."""


class TemporarilyLockedOutError(AuthResponseError):
    """The user is locked out after too many failed logins."""


class InvalidApplicationTokenError(AuthResponseError):
    """The application token of a pre-4.0 robot is missing or invalid."""


class ExpiredApplicationTokenError(AuthResponseError):
    """The application token of a pre-4.0 robot has expired."""


class RpcError(SpotAuthError):
    """The call failed below the auth service: network, TLS, proxy or gRPC."""


class TimedOutError(RpcError):
    pass


class UnableToConnectToRobotError(RpcError):
    pass


class TooManyRequestsError(RpcError):
    pass


class ServiceUnavailableError(RpcError):
    pass


class UnknownDnsNameError(RpcError):
    pass


class NonexistentAuthorityError(RpcError):
    """The robot's certificate does not name the authority asked for."""


class CertificateVerificationError(RpcError):
    """The robot's certificate does not chain to the trusted CA."""


class UnauthenticatedError(RpcError):
    pass


class PermissionDeniedError(RpcError):
    pass


class UnimplementedError(RpcError):
    pass


class ResponseTooLargeError(RpcError):
    pass


class ControllerError(SpotAuthError):
    """The controller, not the robot, could not go on; tokens already obtained are kept."""


class ControllerResourceError(ControllerError):
    """The controller ran out of open files or memory."""


class SessionError(ControllerError):
    """The run's session agent stopped answering in the middle of a request."""


class ErrorSpec:
    """One row of the error table."""

    __slots__ = ("exception", "retryable", "message")

    def __init__(self, exception, retryable, message):
        self.exception = exception
        self.retryable = retryable
        self.message = message

    @property
    def error_type(self):
        return self.exception.__name__


_LOCKOUT_HINT = "not retried: each failed login counts toward the robot's lockout"
_OUT_OF_FILES = "the controller ran out of open files (not the robot's fault; lower concurrency or raise ulimit -n)"

# Keys: ("header", CommonError code name), ("status", Status name), ("grpc", StatusCode name, details marker).
# A grpc row with a marker wins over the row without one when the marker occurs in gRPC's details text.
ERROR_TABLE = {
    ("header", "CODE_UNSPECIFIED"): ErrorSpec(
        UnsetStatusError, False, "the robot's response header has no error code (CODE_UNSPECIFIED)"),
    ("header", "CODE_INTERNAL_SERVER_ERROR"): ErrorSpec(
        InternalServerError, False, "the robot reported an internal server error (CODE_INTERNAL_SERVER_ERROR)"),
    ("header", "CODE_INVALID_REQUEST"): ErrorSpec(
        InvalidRequestError, False, "the robot rejected the request as invalid (CODE_INVALID_REQUEST)"),
    ("header", None): ErrorSpec(
        ResponseError, False, "the robot's response header carries an unknown error code"),
    ("status", "STATUS_UNKNOWN"): ErrorSpec(
        UnsetStatusError, False, "the robot answered without a status (STATUS_UNKNOWN)"),
    ("status", "STATUS_INVALID_LOGIN"): ErrorSpec(
        InvalidLoginError, False, "the robot rejected the username or password; " + _LOCKOUT_HINT),
    ("status", "STATUS_INVALID_TOKEN"): ErrorSpec(
        InvalidTokenError, False,
        "the robot rejected the token (expired, malformed, issued by another robot or before a password change)"),
    ("status", "STATUS_TEMPORARILY_LOCKED_OUT"): ErrorSpec(
        TemporarilyLockedOutError, False,
        "the user is temporarily locked out after repeated failed logins; wait at least 60 seconds"),
    ("status", "STATUS_INVALID_APPLICATION_TOKEN"): ErrorSpec(
        InvalidApplicationTokenError, False, "the robot (software before 4.0) rejected the application token"),
    ("status", "STATUS_EXPIRED_APPLICATION_TOKEN"): ErrorSpec(
        ExpiredApplicationTokenError, False, "the robot (software before 4.0) reports the application token expired"),
    ("status", None): ErrorSpec(
        ResponseError, False, "the robot answered with a status this client does not know"),
    ("response", "token missing"): ErrorSpec(
        MalformedResponseError, False, "the robot answered STATUS_OK without a token"),
    ("response", "token unusable"): ErrorSpec(
        MalformedResponseError, False,
        "the robot answered STATUS_OK with a token that is not 1 to 16384 printable ASCII characters"),
    ("grpc", "DEADLINE_EXCEEDED", None): ErrorSpec(
        TimedOutError, True, "the robot did not answer within the timeout"),
    ("grpc", "UNAVAILABLE", "CERTIFICATE_VERIFY_FAILED"): ErrorSpec(
        CertificateVerificationError, False,
        "the robot's TLS certificate does not chain to the trusted CA (check ca_cert)"),
    ("grpc", "UNAVAILABLE", "Hostname Verification Check failed"): ErrorSpec(
        NonexistentAuthorityError, False, "the robot's TLS certificate does not name the authority (check authority)"),
    ("grpc", "UNAVAILABLE", "Domain name not found"): ErrorSpec(
        UnknownDnsNameError, False, "the robot's hostname does not resolve"),
    ("grpc", "UNAVAILABLE", "status: 429"): ErrorSpec(
        TooManyRequestsError, True, "the robot is rate limiting auth requests (HTTP 429)"),
    ("grpc", "UNAVAILABLE", "status: 502"): ErrorSpec(
        ServiceUnavailableError, True, "the robot's proxy could not reach the auth service (HTTP 502)"),
    ("grpc", "UNAVAILABLE", "Too many open files"): ErrorSpec(ControllerResourceError, False, _OUT_OF_FILES),
    ("grpc", "UNAVAILABLE", "Connection refused"): ErrorSpec(
        UnableToConnectToRobotError, True, "the robot refused the connection (nothing listening on that port)"),
    ("grpc", "UNAVAILABLE", None): ErrorSpec(
        UnableToConnectToRobotError, True, "the robot is unreachable or the auth service is unavailable"),
    ("grpc", "UNAUTHENTICATED", None): ErrorSpec(
        UnauthenticatedError, False, "the robot refused the call as unauthenticated"),
    ("grpc", "PERMISSION_DENIED", None): ErrorSpec(
        PermissionDeniedError, False, "the robot denied permission for the call"),
    ("grpc", "UNIMPLEMENTED", None): ErrorSpec(
        UnimplementedError, False, "the endpoint does not implement bosdyn.api.AuthService (is it a Spot robot?)"),
    ("grpc", "RESOURCE_EXHAUSTED", None): ErrorSpec(
        ResponseTooLargeError, False, "the robot's answer exceeds the message size limit"),
    ("grpc", "INTERNAL", "deserializ"): ErrorSpec(
        MalformedResponseError, False, "the robot's answer is not a valid GetAuthTokenResponse"),
    ("grpc", None, None): ErrorSpec(
        RpcError, False, "the call to the robot failed"),
    ("controller", "EMFILE"): ErrorSpec(ControllerResourceError, False, _OUT_OF_FILES),
    ("controller", "ENOMEM"): ErrorSpec(
        ControllerResourceError, False, "the controller ran out of memory (not the robot's fault; lower concurrency)"),
    ("controller", "session lost"): ErrorSpec(
        SessionError, False,
        "the run's session agent stopped before answering; the request may have reached the robot"),
}

STATUS_OK = "STATUS_OK"
CODE_OK = "CODE_OK"


def _make(spec, hostname, port=None, status=None, grpc_code=None, detail=None):
    where = hostname if port is None or hostname is None else "%s:%s" % (hostname, port)
    message = "%s: %s" % (where, spec.message) if where else spec.message
    if detail:
        message = "%s (%s)" % (message, detail)
    return spec.exception(message, retryable=spec.retryable, status=status, grpc_code=grpc_code, hostname=hostname)


def error_for_response(header_code, status, hostname=None, port=None, header_message="", secrets=()):
    """The error a response stands for, or None when it is a success.

    ``header_code`` and ``status`` are enum names (None for a number the schema does not know),
    checked in the SDK's order: header error first, then the status. ``header_message`` is the robot's
    own text about a header error, shown sanitized.
    """
    if header_code != CODE_OK:
        spec = ERROR_TABLE.get(("header", header_code)) or ERROR_TABLE[("header", None)]
        detail = "robot says: %s" % sanitize(header_message, secrets) if header_message else None
        return _make(spec, hostname, port, status=status, detail=detail)
    if status == STATUS_OK:
        return None
    spec = ERROR_TABLE.get(("status", status)) or ERROR_TABLE[("status", None)]
    return _make(spec, hostname, port, status=status)


def malformed_response(reason, hostname=None, port=None):
    return _make(ERROR_TABLE[("response", reason)], hostname, port)


def controller_reason(exc):
    """The ``("controller", reason)`` row of an exception that is the controller's own shortage, or None."""
    if isinstance(exc, MemoryError) or getattr(exc, "errno", None) == errno.ENOMEM:
        return "ENOMEM"
    if getattr(exc, "errno", None) in (errno.EMFILE, errno.ENFILE):
        return "EMFILE"
    return None


def controller_error(reason, hostname=None, port=None, detail=None):
    """A failure of the controller itself (``reason`` is a ``("controller", reason)`` row)."""
    return _make(ERROR_TABLE[("controller", reason)], hostname, port, detail=detail)


def unexpected_error(exc, hostname=None, port=None, secrets=()):
    """The error an exception outside the table stands for: the controller's shortage, or an RpcError
    whose text is masked like gRPC details."""
    reason = controller_reason(exc)
    if reason is not None:
        return controller_error(reason, hostname, port)
    return error_for_grpc(None, "%s: %s" % (type(exc).__name__, exc), hostname, port, secrets)


def error_class(error_type):
    """The exception class named ``error_type`` (SpotAuthError for a name this version does not know)."""
    found = globals().get(error_type)
    return found if isinstance(found, type) and issubclass(found, SpotAuthError) else SpotAuthError


def error_from_result(fields):
    """Rebuild an error from ``SpotAuthError.to_result()`` fields (the session agent's answers)."""
    cls = error_class(fields.get("error_type"))
    error = SpotAuthError.__new__(cls)
    SpotAuthError.__init__(error, fields.get("msg") or "", retryable=bool(fields.get("retryable")),
                           status=fields.get("status"), grpc_code=fields.get("grpc_code"), hostname=fields.get("hostname"))
    return error


def error_for_grpc(code_name, details, hostname=None, port=None, secrets=()):
    """The error a failed gRPC call stands for.

    ``details`` is gRPC's text; a hostile robot controls part of it, so every secret the call
    carried (``secrets``) is masked out of the copy that reaches the message.
    """
    details = details or ""
    for (_kind, code, marker), spec in ERROR_TABLE_GRPC_ROWS:
        if code in (code_name, None) and (marker is None or marker in details):
            detail = sanitize(details, secrets) if marker is None else None
            return _make(spec, hostname, port, grpc_code=code_name, detail=detail)
    raise AssertionError("the error table has a catch-all gRPC row")


def mask_secrets(text, secrets):
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    return text


# Unicode categories shown escaped: controls, formatting (bidi overrides, zero-width), surrogates,
# private use, unassigned, and line or paragraph separators.
_ESCAPED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
_WHITESPACE = re.compile(r"[ \t\n\r\x0b\x0c]+")
SANITIZED_LENGTH = 200


def sanitize(text, secrets=(), limit=SANITIZED_LENGTH):
    """Text from a robot (or gRPC about a robot), safe to show: one line, secrets masked, every control
    character escaped (``\\x1b``, ``\\u202e``), at most ``limit`` characters."""
    if not isinstance(text, str):
        text = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else str(text)
    # Masked before and after the text changes shape, so no rewriting can reveal a secret.
    text = mask_secrets(_WHITESPACE.sub(" ", mask_secrets(text, secrets)).strip(" "), secrets)
    shown = []
    size = 0
    for char in text:
        if unicodedata.category(char) in _ESCAPED_CATEGORIES:
            code = ord(char)
            char = "\\x%02x" % code if code <= 0xff else ("\\u%04x" % code if code <= 0xffff else "\\U%08x" % code)
        if size + len(char) > limit:
            while shown and size > limit - 3:  # whole characters or escapes only, then the ellipsis
                size -= len(shown.pop())
            shown.append("...")
            break
        shown.append(char)
        size += len(char)
    return mask_secrets("".join(shown), secrets)


# gRPC rows in match order: rows with a marker before the code's catch-all, the table catch-all last.
ERROR_TABLE_GRPC_ROWS = sorted(
    ((key, spec) for key, spec in ERROR_TABLE.items() if key[0] == "grpc"),
    key=lambda item: (item[0][1] is None, item[0][2] is None),
)


def error_types():
    """Every error type the table can produce, for docs and tests."""
    return sorted({spec.error_type for spec in ERROR_TABLE.values()})
