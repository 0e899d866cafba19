# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One simulated robot's auth service: users, tokens, lockout, rate limit and faults.

Pure logic: :meth:`SimRobot.handle` turns a GetAuthTokenRequest into an :class:`Answer`
(a response, or a gRPC error to raise, plus a delay to wait first). The transport in
``fleet.py`` carries it over TLS. Time comes from an injectable clock, so tests can step
through lockouts, rate limits and token expiry without sleeping.
"""

from __future__ import annotations

import collections
import dataclasses
import hmac
import re
import threading
import time
import uuid
from typing import Callable, Dict, List, Optional

from . import tokens, wire

# --------------------------------------------------------------------------------------------
# Clocks


class SystemClock:
    """Wall time for timestamps and token claims, monotonic time for lockouts and rate limits."""

    def time(self):
        return time.time()

    def monotonic(self):
        return time.monotonic()


class ManualClock:
    """A clock that only moves when told to (``advance``); thread safe."""

    def __init__(self, start=None):
        self._lock = threading.Lock()
        self._wall = float(time.time() if start is None else start)
        self._mono = 1000.0

    def time(self):
        with self._lock:
            return self._wall

    def monotonic(self):
        with self._lock:
            return self._mono

    def advance(self, seconds):
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._wall += seconds
            self._mono += seconds


# --------------------------------------------------------------------------------------------
# Settings and answers

RATE_LIMIT_DETAILS = "Received http2 header with status: 429"
UNAVAILABLE_DETAILS = "simulated fault: the auth service is unavailable"


@dataclasses.dataclass
class AuthSettings:
    """Behaviour knobs shared by the robots of a fleet. Defaults are the real robot's."""

    lockout_threshold: int = 6  # consecutive failed logins that lock a user; 0 disables lockout
    lockout_seconds: float = 60.0
    rate_limit: float = 5.0  # requests per second per robot; 0 disables the limit
    rate_burst: Optional[float] = None  # bucket size; default max(1, rate_limit)
    token_lifetime: float = 43200.0  # 12 hours
    latency_ms: float = 0.0  # added to every answer
    slow_seconds: float = 5.0  # delay of the ``slow`` fault
    record_limit: int = 10000  # request records kept per robot (the count keeps going)

    def validate(self):
        if self.lockout_threshold < 0:
            raise ValueError("lockout_threshold must be >= 0")
        for name in ("lockout_seconds", "rate_limit", "latency_ms", "slow_seconds"):
            if getattr(self, name) < 0:
                raise ValueError("%s must be >= 0" % name)
        if self.token_lifetime <= 0:
            raise ValueError("token_lifetime must be > 0")
        if self.rate_burst is not None and self.rate_burst < 1:
            raise ValueError("rate_burst must be >= 1")
        if self.record_limit < 1:
            raise ValueError("record_limit must be >= 1")
        return self


@dataclasses.dataclass
class Answer:
    """What the transport must do with one request.

    ``grpc_code`` is the name of a ``grpc.StatusCode``: ``OK`` means send ``response``,
    anything else means fail the call with that code and ``details``.
    """

    response: object = None
    grpc_code: str = "OK"
    details: str = ""
    delay: float = 0.0
    outcome: str = ""
    fault: Optional[str] = None

    def finish(self, now):
        """Stamp the response just before it leaves (after any delay)."""
        if self.response is not None:
            wire.set_timestamp(self.response.header.response_timestamp, now)
        return self.response


@dataclasses.dataclass
class RequestRecord:
    """What a robot remembers about one request. Never holds a password or a token."""

    index: int
    time: float
    kind: str  # "password", "token" or "none"
    username: str
    client_name: str
    disable_rpc_logging: bool
    app_token_present: bool
    outcome: str = ""  # STATUS_..., CODE_... (header error), RATE_LIMITED or UNAVAILABLE
    grpc_code: str = "OK"
    fault: Optional[str] = None

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class User:
    username: str
    password: str = dataclasses.field(repr=False)
    permissions: tuple = ("*",)
    generation: int = 1  # bumped on every password change; tokens carry it as "pwg"


# --------------------------------------------------------------------------------------------
# Faults: a table of named behaviours, looked up by name.


@dataclasses.dataclass(frozen=True)
class FaultKind:
    name: str
    summary: str
    listen: bool = True  # False: the port is reserved but nothing accepts connections
    certificate: str = "good"  # "good", "wrong-ca" or "wrong-name"
    # seconds added before answering, from (settings, parameter)
    delay: Optional[Callable[[AuthSettings, object], float]] = None
    # (robot, fault, state dict, request) -> Answer or None to carry on
    intercept: Optional[Callable] = None
    param_type: Optional[type] = None
    param_help: str = ""


def _fail_unavailable(robot, fault, state, request):
    return robot.grpc_error("UNAVAILABLE", UNAVAILABLE_DETAILS, "UNAVAILABLE")


def _fail_flaky(robot, fault, state, request):
    limit = 2 if fault.param is None else fault.param
    seen = state.get("failed", 0)
    if seen >= limit:
        return None
    state["failed"] = seen + 1
    return robot.grpc_error("UNAVAILABLE", UNAVAILABLE_DETAILS, "UNAVAILABLE")


def _fail_rate_limited(robot, fault, state, request):
    return robot.grpc_error("UNAVAILABLE", RATE_LIMIT_DETAILS, "RATE_LIMITED")


def _fail_internal(robot, fault, state, request):
    return robot.header_error(request, wire.CODE_INTERNAL_SERVER_ERROR, "simulated internal server error")


def _fail_unknown_status(robot, fault, state, request):
    return robot.status_answer(request, wire.STATUS_UNKNOWN)


def _slow_delay(settings, param):
    return settings.slow_seconds if param is None else float(param)


FAULTS: Dict[str, FaultKind] = {kind.name: kind for kind in (
    FaultKind("down", "nothing listens on the robot's port: connection refused", listen=False),
    FaultKind("slow", "answers after --slow-seconds (or slow:SECONDS)", delay=_slow_delay,
              param_type=float, param_help="SECONDS"),
    FaultKind("internal", "response header error CODE_INTERNAL_SERVER_ERROR", intercept=_fail_internal),
    FaultKind("unknown", "STATUS_UNKNOWN with a CODE_OK header", intercept=_fail_unknown_status),
    FaultKind("unavailable", "every call fails with gRPC UNAVAILABLE", intercept=_fail_unavailable),
    FaultKind("flaky", "the first K calls (default 2) fail with UNAVAILABLE, then normal",
              intercept=_fail_flaky, param_type=int, param_help="K"),
    FaultKind("wrong-ca", "TLS certificate from a CA other than ca.pem", certificate="wrong-ca"),
    FaultKind("wrong-name", "TLS certificate from the right CA that does not name auth.spot.robot",
              certificate="wrong-name"),
    FaultKind("ratelimited", "every call gets the proxy's HTTP 429 (UNAVAILABLE, 'status: 429')",
              intercept=_fail_rate_limited),
)}


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: FaultKind
    param: object = None

    @property
    def name(self):
        return self.kind.name

    def __str__(self):
        return self.kind.name if self.param is None else "%s:%s" % (self.kind.name, _format_param(self.param))


def _format_param(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_fault(spec):
    """A Fault from ``"name"`` or ``"name:param"`` (e.g. ``"flaky:3"``, ``"slow:1.5"``)."""
    if isinstance(spec, Fault):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("a fault is a non-empty string such as 'slow' or 'flaky:3'")
    name, sep, raw = spec.strip().partition(":")
    kind = FAULTS.get(name.strip().lower())
    if kind is None:
        raise ValueError("unknown fault %r; known faults: %s" % (name, ", ".join(sorted(FAULTS))))
    if not sep:
        return Fault(kind)
    if kind.param_type is None:
        raise ValueError("fault %r takes no parameter" % kind.name)
    try:
        param = kind.param_type(raw.strip())
    except ValueError:
        raise ValueError("fault %s needs a %s parameter (%s:%s)" % (
            kind.name, kind.param_type.__name__, kind.name, kind.param_help)) from None
    if param < 0:
        raise ValueError("fault %s parameter must be >= 0" % kind.name)
    return Fault(kind, param)


def parse_faults(specs):
    """A list of Faults from a string (comma separated), a Fault, or a list of either."""
    if specs is None:
        return []
    if isinstance(specs, (str, Fault)):
        specs = [specs]
    faults = []
    for spec in specs:
        if isinstance(spec, str):
            faults.extend(parse_fault(part) for part in spec.split(",") if part.strip())
        else:
            faults.append(parse_fault(spec))
    certificates = {f.kind.certificate for f in faults} - {"good"}
    if len(certificates) > 1:
        raise ValueError("a robot has one certificate: faults %s conflict" % ", ".join(sorted(certificates)))
    return faults


# --------------------------------------------------------------------------------------------
# Application tokens (pre-4.0 robots)


class ApplicationTokenAuthority:
    """Issues and checks the application tokens that robots on 2.x/3.x software demand."""

    ISSUER = "spot-auth-sim application tokens"

    def __init__(self, clock=None):
        self._key = tokens.generate_signing_key()
        self._clock = clock or SystemClock()

    def issue(self, application="spot-auth-sim", lifetime=365 * 86400.0, issued_at=None):
        iat = int(self._clock.time() if issued_at is None else issued_at)
        claims = {"iss": self.ISSUER, "sub": application, "iat": iat, "exp": iat + int(lifetime),
                  "jti": uuid.uuid4().hex}
        return tokens.sign(self._key, claims, key_id="app")

    def check(self, token):
        """The status a legacy robot answers for this application token, or None when it is good."""
        if not token:
            return wire.STATUS_INVALID_APPLICATION_TOKEN
        try:
            claims = tokens.verify(self._key.public_key(), token)
        except tokens.TokenError:
            return wire.STATUS_INVALID_APPLICATION_TOKEN
        exp = claims.get("exp")
        if claims.get("iss") != self.ISSUER or not isinstance(exp, (int, float)):
            return wire.STATUS_INVALID_APPLICATION_TOKEN
        if self._clock.time() >= exp:
            return wire.STATUS_EXPIRED_APPLICATION_TOKEN
        return None


# --------------------------------------------------------------------------------------------
# Rate limit


class TokenBucket:
    """``rate`` requests per second on average, bursts of up to ``burst``."""

    def __init__(self, rate, burst, clock):
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._level = self.burst
        self._stamp = clock.monotonic()

    def take(self):
        now = self._clock.monotonic()
        self._level = min(self.burst, self._level + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._level >= 1.0:
            self._level -= 1.0
            return True
        return False

    def refill(self):
        self._level = self.burst
        self._stamp = self._clock.monotonic()


# --------------------------------------------------------------------------------------------
# The robot

_NAME_RE = re.compile(r"^(?:robot-?)?0*(\d+)$", re.IGNORECASE)


def robot_name(index, width=3):
    return "robot-%0*d" % (width, index)


def robot_index(name):
    """The number in ``robot-003``, ``robot-3``, ``robot3`` or ``3``; None for other names."""
    match = _NAME_RE.match(str(name).strip())
    return int(match.group(1)) if match else None


class _LockoutState:
    __slots__ = ("failures", "locked_until")

    def __init__(self):
        self.failures = 0
        self.locked_until = None


class SimRobot:
    """One simulated robot's auth service.

    Thread safe: the transport calls :meth:`handle` from its event loop while tests change
    passwords or read records from other threads.

    Lockout rules: ``lockout_threshold`` consecutive failed password logins for a username
    (known or not) lock it for ``lockout_seconds``; the failing attempt that reaches the
    threshold still answers STATUS_INVALID_LOGIN, later ones STATUS_TEMPORARILY_LOCKED_OUT,
    even with the right password. Attempts while locked neither count nor extend the lock.
    When the lock expires the count starts again from zero. A successful login resets the
    count. Token re-mints are neither blocked by a lock nor counted as failures.
    """

    def __init__(self, name, serial, users, settings=None, faults=(), legacy=False,
                 app_tokens=None, clock=None, default_username=None):
        self.name = name
        self.serial = serial
        self.settings = (settings or AuthSettings()).validate()
        self.faults: List[Fault] = parse_faults(list(faults))
        self.legacy = bool(legacy)
        self.clock = clock or SystemClock()
        if self.legacy and app_tokens is None:
            raise ValueError("a legacy robot needs an ApplicationTokenAuthority")
        self._app_tokens = app_tokens
        self._lock = threading.RLock()
        self._users: Dict[str, User] = {}
        for user in users:
            if isinstance(user, dict):
                user = User(**user)
            self._add_user(user)
        if not self._users:
            raise ValueError("robot %s has no user" % name)
        self.default_username = default_username or next(iter(self._users))
        if self.default_username not in self._users:
            raise ValueError("robot %s has no user %r" % (name, self.default_username))
        self._signing_key = tokens.generate_signing_key()
        self._public_key = self._signing_key.public_key()
        self._lockouts: Dict[str, _LockoutState] = {}
        self._records = collections.deque(maxlen=self.settings.record_limit)
        self._count = 0
        self._fault_state: Dict[str, dict] = {}
        rate = self.settings.rate_limit
        burst = self.settings.rate_burst if self.settings.rate_burst is not None else max(1.0, rate)
        self._bucket = TokenBucket(rate, burst, self.clock) if rate > 0 else None
        self._base_delay = self.settings.latency_ms / 1000.0 + sum(
            f.kind.delay(self.settings, f.param) for f in self.faults if f.kind.delay is not None)
        # Set by the fleet once it is serving.
        self.port: Optional[int] = None
        self.host = "127.0.0.1"
        self.ca_pem: Optional[bytes] = None
        self.ca_path: Optional[str] = None
        self.app_token: Optional[str] = None

    def __repr__(self):
        return "SimRobot(name=%r, serial=%r, port=%r, faults=%r, legacy=%r)" % (
            self.name, self.serial, self.port, [str(f) for f in self.faults], self.legacy)

    # ---- identity -------------------------------------------------------------------------

    @property
    def address(self):
        return "%s:%s" % (self.host, self.port)

    @property
    def username(self):
        return self.default_username

    @property
    def password(self):
        """Current password of the default user."""
        with self._lock:
            return self._users[self.default_username].password

    @property
    def fault_names(self):
        return [str(f) for f in self.faults]

    @property
    def listening(self):
        return all(f.kind.listen for f in self.faults)

    @property
    def certificate_kind(self):
        for fault in self.faults:
            if fault.kind.certificate != "good":
                return fault.kind.certificate
        return "good"

    @property
    def public_key(self):
        return self._public_key

    # ---- users ----------------------------------------------------------------------------

    def _add_user(self, user):
        if not isinstance(user.username, str) or not user.username:
            raise ValueError("a username is a non-empty string")
        if not isinstance(user.password, str) or not user.password:
            raise ValueError("user %r needs a non-empty password" % user.username)
        user.permissions = tuple(user.permissions)
        self._users[user.username] = user

    @property
    def usernames(self):
        with self._lock:
            return list(self._users)

    def set_password(self, username, new_password, create=False, permissions=None):
        """Change (or with ``create`` add) a user's password; earlier tokens stop re-minting.

        Returns the user's new password generation.
        """
        if not isinstance(new_password, str) or not new_password:
            raise ValueError("a password is a non-empty string")
        with self._lock:
            user = self._users.get(username)
            if user is None:
                if not create:
                    raise KeyError("robot %s has no user %r" % (self.name, username))
                self._add_user(User(username, new_password, tuple(permissions or ("*",))))
                return 1
            user.password = new_password
            user.generation += 1
            if permissions is not None:
                user.permissions = tuple(permissions)
            return user.generation

    # ---- records and state ----------------------------------------------------------------

    @property
    def requests(self):
        """Copies of the request records kept (the newest ``record_limit``)."""
        with self._lock:
            return [dataclasses.replace(r) for r in self._records]

    @property
    def request_count(self):
        """Requests received since start or the last reset (including any no longer kept)."""
        with self._lock:
            return self._count

    def lockout_status(self, username):
        with self._lock:
            state = self._lockouts.get(username)
            now = self.clock.monotonic()
            if state is None:
                return {"failures": 0, "locked": False, "seconds_left": 0.0}
            locked = state.locked_until is not None and now < state.locked_until
            return {"failures": state.failures, "locked": locked,
                    "seconds_left": max(0.0, state.locked_until - now) if locked else 0.0}

    def reset(self, records=True, lockouts=True, faults=True, rate_limit=True):
        """Forget request records, lockouts, fault progress (flaky) and rate-limit debt."""
        with self._lock:
            if records:
                self._records.clear()
                self._count = 0
            if lockouts:
                self._lockouts.clear()
            if faults:
                self._fault_state.clear()
            if rate_limit and self._bucket is not None:
                self._bucket.refill()

    def summary(self):
        """A JSON-friendly description (no password, no token)."""
        with self._lock:
            return {"name": self.name, "serial": self.serial, "host": self.host, "port": self.port,
                    "username": self.default_username, "users": list(self._users),
                    "faults": self.fault_names, "legacy": self.legacy, "listening": self.listening,
                    "certificate": self.certificate_kind, "request_count": self._count}

    # ---- tokens ---------------------------------------------------------------------------

    def mint_token(self, username=None, lifetime=None, issued_at=None):
        """A user token as this robot would issue it now (or at ``issued_at``), for tests."""
        with self._lock:
            user = self._users[username or self.default_username]
            iat = int(self.clock.time() if issued_at is None else issued_at)
            exp = iat + int(self.settings.token_lifetime if lifetime is None else lifetime)
            return self._sign_token(user, iat, exp)

    def _sign_token(self, user, iat, exp):
        claims = {
            "iss": self.serial,
            "sub": user.username,
            "username": user.username,
            "iat": iat,
            "exp": exp,
            "jti": uuid.uuid4().hex,
            "per": list(user.permissions),
            "pwg": user.generation,
        }
        return tokens.sign(self._signing_key, claims, key_id=self.serial)

    def _token_user(self, token):
        """(user, claims) for a token this robot would re-mint now, or (None, None)."""
        try:
            claims = tokens.verify(self._public_key, token)
        except tokens.TokenError:
            return None, None
        exp = claims.get("exp")
        if claims.get("iss") != self.serial or not isinstance(exp, (int, float)) or isinstance(exp, bool):
            return None, None
        if self.clock.time() >= exp:
            return None, claims
        user = self._users.get(claims.get("username"))
        if user is None or claims.get("pwg") != user.generation:
            return None, claims
        return user, claims

    # ---- answers --------------------------------------------------------------------------

    def _base_response(self, request, code, message=""):
        response = wire.GetAuthTokenResponse()
        response.header.request_header.CopyFrom(request.header)
        wire.set_timestamp(response.header.request_received_timestamp, self._received)
        wire.set_timestamp(response.header.response_timestamp, self._received)
        response.header.error.code = code
        if message:
            response.header.error.message = message
        return response

    def status_answer(self, request, status, token=""):
        response = self._base_response(request, wire.CODE_OK)
        response.status = status
        if token:
            response.token = token
        return Answer(response=response, outcome=wire.status_name(status))

    def header_error(self, request, code, message):
        return Answer(response=self._base_response(request, code, message), outcome=wire.code_name(code))

    def grpc_error(self, code_name, details, outcome):
        return Answer(grpc_code=code_name, details=details, outcome=outcome)

    # ---- the RPC --------------------------------------------------------------------------

    def handle(self, request):
        """Decide the answer to one GetAuthTokenRequest and record it."""
        with self._lock:
            self._received = self.clock.time()
            self._count += 1
            if request.token:
                kind = "token"
            elif request.password:
                kind = "password"
            else:
                kind = "none"
            record = RequestRecord(
                index=self._count, time=self._received, kind=kind, username=request.username,
                client_name=request.header.client_name,
                disable_rpc_logging=bool(request.header.disable_rpc_logging),
                app_token_present=bool(request.application_token))
            answer = self._decide(request, kind, record)
            answer.delay += self._base_delay
            record.outcome = answer.outcome
            record.grpc_code = answer.grpc_code
            record.fault = answer.fault
            self._records.append(record)
            return answer

    def _decide(self, request, kind, record):
        if self._bucket is not None and not self._bucket.take():
            return self.grpc_error("UNAVAILABLE", RATE_LIMIT_DETAILS, "RATE_LIMITED")
        for fault in self.faults:
            if fault.kind.intercept is None:
                continue
            state = self._fault_state.setdefault(str(fault), {})
            answer = fault.kind.intercept(self, fault, state, request)
            if answer is not None:
                answer.fault = str(fault)
                return answer
        if kind == "none":
            return self.header_error(request, wire.CODE_INVALID_REQUEST,
                                     "GetAuthToken needs a username and password, or a token")
        if self.legacy:
            status = self._app_tokens.check(request.application_token)
            if status is not None:
                return self.status_answer(request, status)
        if kind == "token":
            return self._remint(request, record)
        return self._login(request)

    def _login(self, request):
        username = request.username
        now = self.clock.monotonic()
        state = self._lockouts.get(username)
        if state is not None and state.locked_until is not None:
            if now < state.locked_until:
                return self.status_answer(request, wire.STATUS_TEMPORARILY_LOCKED_OUT)
            del self._lockouts[username]
            state = None
        user = self._users.get(username)
        if user is not None and hmac.compare_digest(user.password.encode("utf-8"),
                                                    request.password.encode("utf-8")):
            self._lockouts.pop(username, None)
            iat = int(self.clock.time())
            token = self._sign_token(user, iat, iat + int(self.settings.token_lifetime))
            return self.status_answer(request, wire.STATUS_OK, token)
        threshold = self.settings.lockout_threshold
        if threshold > 0 and username:
            if state is None:
                state = self._lockouts[username] = _LockoutState()
            state.failures += 1
            if state.failures >= threshold:
                state.failures = 0
                state.locked_until = now + self.settings.lockout_seconds
        return self.status_answer(request, wire.STATUS_INVALID_LOGIN)

    def _remint(self, request, record):
        user, claims = self._token_user(request.token)
        if user is None:
            return self.status_answer(request, wire.STATUS_INVALID_TOKEN)
        if not record.username:
            record.username = user.username
        iat = int(self.clock.time())
        exp = max(iat + int(self.settings.token_lifetime), int(claims["exp"]) + 1)
        return self.status_answer(request, wire.STATUS_OK, self._sign_token(user, iat, exp))
