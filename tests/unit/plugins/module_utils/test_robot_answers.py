# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whatever a robot answers over real gRPC+TLS, the handshake ends in a usable token or a typed error,
in bounded time, with the robot's text shown escaped and no secret in it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import itertools
import os
import threading
import time
import unicodedata
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError

import grpc
import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from ansible_collections.spot.auth.plugins.module_utils import _client, _errors, _handshake, _wire
from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient, interpret_response, worst_case_seconds
from ansible_collections.spot.auth.plugins.module_utils._options import settings_from
from ansible_collections.spot.auth.plugins.module_utils._token_cache import TokenCache
from ansible_collections.spot.auth.plugins.module_utils._tokens import usable_token
from ansible_collections.spot.auth.plugins.plugin_utils._session import Session, deadline_for
from ansible_collections.spot.auth.tests.unit.conftest import MINTED, PASSWORD, TOKEN, ScriptedRobot, abort, sleeper

TIMEOUT = 2.0
RETRIES = 0
BOUND = worst_case_seconds(TIMEOUT, RETRIES) + 2
MAX_MESSAGE_CHARS = 400
# What must never reach a message raw: controls, formatting (bidi, zero-width), surrogates, private use,
# unassigned code points, line and paragraph separators.
UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
GRPC_MARKERS = [key[2] for key in _errors.ERROR_TABLE if key[0] == "grpc" and key[2]]

HEADER_ERRORS = {0: "UnsetStatusError", 2: "InternalServerError", 3: "InvalidRequestError"}
STATUS_ERRORS = {
    0: "UnsetStatusError", 2: "InvalidLoginError", 3: "InvalidTokenError", 4: "TemporarilyLockedOutError",
    5: "InvalidApplicationTokenError", 6: "ExpiredApplicationTokenError",
}
ABORT_ERRORS = {
    "DEADLINE_EXCEEDED": "TimedOutError", "UNAVAILABLE": "UnableToConnectToRobotError", "UNAUTHENTICATED": "UnauthenticatedError",
    "PERMISSION_DENIED": "PermissionDeniedError", "UNIMPLEMENTED": "UnimplementedError", "RESOURCE_EXHAUSTED": "ResponseTooLargeError",
}
HOSTILE_PIECES = [
    "\x1b[2J", "\x1b[H", "\x1b]0;owned\x07", "\x1b[31m", "\u202e", "\u2066", "\u200b", "\ufeff", "\r\n", "\n", "\t", "\x0b", "\x00",
    "\x7f", "\x85", "\u2028", "\u2029", "\U000e0041", "\ue000", "\U0010fffd", "\u0378", " fake PLAY RECAP ok=1 failed=0 ",
    PASSWORD, TOKEN, "é", "\U0001f600", "%", "%1B", "\\x1b", "  ", "********",
]


def unsafe_characters(text):
    return [char for char in text if unicodedata.category(char) in UNSAFE_CATEGORIES]


def is_usable(token):
    """What a token must be to be returned or cached, written out independently of the code under test."""
    return isinstance(token, str) and 1 <= len(token) <= 16384 and all(0x21 <= ord(char) <= 0x7e for char in token)


def resolve(future, bound=BOUND):
    """The result of ``future`` (an error is returned, not raised); fails the test if it is still pending after ``bound``."""
    started = time.monotonic()
    try:
        result = future.result(timeout=bound)
    except FutureTimeoutError:
        pytest.fail("still pending %.1f s after it started: the handshake never settled" % bound)
    except _errors.SpotAuthError as error:
        result = error
    assert time.monotonic() - started <= bound
    return result


def assert_shown_safely(error, secrets=(PASSWORD,)):
    assert isinstance(error, _errors.SpotAuthError), repr(error)
    assert error.error_type in _errors.error_types()
    assert not unsafe_characters(error.message), ascii(error.message)
    assert len(error.message) <= MAX_MESSAGE_CHARS, len(error.message)
    for secret in secrets:
        assert secret not in error.message


def response_bytes(header_code=1, status=1, token="", header_message="", with_header=True):
    response = _wire.messages.GetAuthTokenResponse()
    if with_header:
        response.header.error.code = header_code
        if header_message:
            response.header.error.message = header_message
    response.status = status
    if token:
        response.token = token
    return response.SerializeToString()


class Reply:
    """A well-formed GetAuthTokenResponse with the given fields."""

    def __init__(self, header_code, status, token, header_message, with_header):
        self.header_code = header_code if with_header else 0
        self.status = status
        self.token = token
        self.header_message = header_message if with_header else ""
        self.payload = response_bytes(header_code, status, token, header_message, with_header)

    def __repr__(self):
        return "Reply(header=%d, status=%d, token=%s, header_message=%s, %d bytes)" % (
            self.header_code, self.status, ascii(self.token[:80]), ascii(self.header_message[:80]), len(self.payload))

    def __call__(self, request, context):
        return self.payload

    def expected(self):
        """(error type, None) or (None, token), by the protocol's rules."""
        if len(self.payload) > _client.MAX_MESSAGE_BYTES:
            return "ResponseTooLargeError", None
        if self.header_code != 1:
            return HEADER_ERRORS.get(self.header_code, "ResponseError"), None
        if self.status != 1:
            return STATUS_ERRORS.get(self.status, "ResponseError"), None
        if not is_usable(self.token):
            return "MalformedResponseError", None
        return None, self.token

    def robot_text(self):
        """The robot's own words the message must show (sanitized), or None: an answer too large is never read."""
        if len(self.payload) > _client.MAX_MESSAGE_BYTES or self.header_code == 1:
            return None
        return self.header_message or None


class Abort:
    """An RPC the robot fails with a gRPC status and details of its choosing."""

    def __init__(self, code, details):
        self.code = code
        self.details = details

    def __repr__(self):
        return "Abort(%s, %s)" % (self.code.name, ascii(self.details[:120]))

    def __call__(self, request, context):
        context.abort(self.code, self.details)

    def expected(self):
        return ABORT_ERRORS.get(self.code.name, "RpcError"), None

    def robot_text(self):
        if any(marker in self.details for marker in GRPC_MARKERS):
            return None  # a marker row shows the table's words only
        return self.details or None


class Raise:
    """A handler that raises: gRPC answers UNKNOWN with the exception's text as details."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return "Raise(%s)" % ascii(self.text[:120])

    def __call__(self, request, context):
        raise RuntimeError(self.text)

    def expected(self):
        return "RpcError", None

    def robot_text(self):
        return None


def weighted(*choices):
    """One of the strategies of ``choices`` ((weight, strategy) pairs), drawn in proportion to its weight."""
    ladder = []
    for weight, strategy in choices:
        ladder.extend([strategy] * weight)
    return st.integers(0, len(ladder) - 1).flatmap(lambda index: ladder[index])


hostile_text = st.lists(st.one_of(st.text(max_size=20), st.sampled_from(HOSTILE_PIECES)), max_size=10).map("".join)
repeated = st.builds(lambda piece, count: piece * count, st.sampled_from(HOSTILE_PIECES + ["A"]), st.integers(1, 3000))
codes = weighted((6, st.just(1)), (3, st.integers(0, 7)), (1, st.integers(-2 ** 31, 2 ** 31 - 1)))
tokens = weighted(
    (2, st.just(MINTED)),
    (3, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=64)),
    (3, hostile_text),
    (1, st.text(max_size=40)),
    (1, st.builds(lambda piece, count: piece * count, st.sampled_from(["A", "~", "\u00e9", "\x1b", " ", "\u20ac"]),
                  st.sampled_from([16384, 16385, 30000]))),
)
replies = st.builds(Reply, header_code=codes, status=codes, token=tokens, header_message=st.one_of(hostile_text, repeated),
                    with_header=st.sampled_from([True, True, True, False]))
aborts = st.builds(Abort, code=st.sampled_from([code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]), details=hostile_text)
raises = st.builds(Raise, text=hostile_text)
answers = weighted((6, replies), (3, aborts), (1, raises))


@pytest.fixture(scope="module")
def robot(pki):
    """One robot for every example: it answers what ``robot.answer`` says."""
    def answer(request, context):  # looked up at each call: the examples change it
        return holder.answer(request, context)

    holder = ScriptedRobot(pki.good, [answer])
    holder.answer = Reply(1, 1, MINTED, "", True)
    yield holder
    holder.stop()


@pytest.fixture(scope="module")
def ca_file(pki, tmp_path_factory):
    path = tmp_path_factory.mktemp("robot-answers-ca") / "ca.pem"
    path.write_bytes(pki.roots)
    return str(path)


@pytest.fixture(scope="module")
def cache_dirs(tmp_path_factory):
    """A fresh (not yet created) token cache directory at each call."""
    root = tmp_path_factory.mktemp("robot-answers-caches")
    counter = itertools.count()
    return lambda: str(root / ("cache-%d" % next(counter)))


def settings_for(port, ca_file, cache_dir, timeout=TIMEOUT, retries=RETRIES, username="admin", **changes):
    params = {"hostname": "127.0.0.1", "port": port, "username": username, "password": PASSWORD, "ca_cert": ca_file,
              "token_cache": cache_dir, "timeout": timeout, "retries": retries}
    params.update(changes)
    return settings_from(params)


def check_answer(answer, got, secrets):
    expected_type, expected_token = answer.expected()
    if expected_type is None:
        assert got == expected_token, repr(got)
        assert usable_token(got)
        return
    assert_shown_safely(got, secrets)
    assert got.error_type == expected_type, got.message
    text = answer.robot_text()
    if text is not None and _errors.sanitize(text, secrets):
        assert _errors.sanitize(text, secrets) in got.message


@hypothesis.settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(answer=answers, method=st.sampled_from(["password", "token"]))
@hypothesis.example(answer=Reply(0, 1, "\u00e9" * 30000, "\x1b[2J" * 1381, True), method="password")  # too large, header error
def test_every_answer_is_a_token_or_a_typed_error_in_bounded_time(robot, pki, ca_file, cache_dirs, answer, method):
    robot.answer = answer
    hypothesis.event("%s: %s" % (type(answer).__name__, answer.expected()[0] or "token"))
    secret = PASSWORD if method == "password" else TOKEN
    with AuthClient("127.0.0.1", robot.port, root_certificates=pki.roots, timeout=TIMEOUT, retries=RETRIES) as client:
        if method == "password":
            future = client.auth_async("admin", PASSWORD)
        else:
            future = client.auth_with_token_async(TOKEN)
        check_answer(answer, resolve(future), (secret,))

    cache_dir = cache_dirs()
    options = {"password": None, "token": TOKEN} if method == "token" else {}
    settings = settings_for(robot.port, ca_file, cache_dir, **options)
    with settings.client() as client:
        got = resolve(_handshake.obtain_async(settings, client))
    expected_type, expected_token = answer.expected()
    if expected_type is None:
        assert isinstance(got, _handshake.Outcome), repr(got)
        assert (got.token, got.method, got.warnings) == (expected_token, method, [])
        with open(os.path.join(cache_dir, settings.cache_entry)) as entry:
            assert entry.read() == expected_token
    else:
        check_answer(answer, got, (secret,))
        # Nothing cached and no temporary file left; a refusal is recorded, as a hash, for the next run.
        assert [name for name in os.listdir(cache_dir) if not name.endswith(".refused")] == []


@hypothesis.settings(max_examples=300, deadline=None)
@given(reply=replies)
def test_interpret_response_matches_the_protocol_rules(reply):
    if len(reply.payload) > _client.MAX_MESSAGE_BYTES:
        return  # gRPC refuses it before it is parsed
    error, token = interpret_response(_wire.parse_response(reply.payload), "robot", 443, (PASSWORD,))
    expected_type, expected_token = reply.expected()
    assert token == expected_token
    if expected_type is None:
        assert error is None
    else:
        check_answer(reply, error, (PASSWORD,))


# -- regressions: each of these once hung or let a robot's bytes through -------------------------------


def test_non_ascii_token_with_a_token_cache_is_malformed_not_pending(robot_factory, ca_file, cache_dirs):
    robot = robot_factory(Reply(1, 1, "t\u00f8ken", "", True))
    cache_dir = cache_dirs()
    settings = settings_for(robot.port, ca_file, cache_dir)
    with settings.client() as client:
        got = resolve(_handshake.obtain_async(settings, client))
    assert_shown_safely(got)
    assert got.error_type == "MalformedResponseError"
    assert "token" in got.message
    assert os.listdir(cache_dir) == []


def test_non_ascii_token_is_malformed_without_a_cache_too(robot_factory, pki):
    robot = robot_factory(Reply(1, 1, "t\u00f8ken", "", True))
    with AuthClient("127.0.0.1", robot.port, root_certificates=pki.roots, timeout=TIMEOUT, retries=RETRIES) as client:
        got = resolve(client.auth_async("admin", PASSWORD))
    assert isinstance(got, _errors.MalformedResponseError), repr(got)


def test_a_cache_write_that_raises_still_settles_the_handshake(robot_factory, ca_file, cache_dirs, monkeypatch):
    def broken_write(self, name, token):
        raise RuntimeError("the cache disk caught fire")

    monkeypatch.setattr(TokenCache, "write", broken_write)
    robot = robot_factory(Reply(1, 1, MINTED, "", True))
    settings = settings_for(robot.port, ca_file, cache_dirs())
    with settings.client() as client:
        got = resolve(_handshake.obtain_async(settings, client))
    if isinstance(got, _handshake.Outcome):
        assert got.token == MINTED and got.warnings
    else:
        assert_shown_safely(got)
        assert MINTED not in got.message
    assert len(robot.requests) == 1


def test_a_retry_that_cannot_start_still_settles_the_call(robot_factory, pki, monkeypatch):
    class NoThreadLeft(threading.Timer):
        def start(self):
            raise RuntimeError("can't start new thread")

    robot = robot_factory(abort(grpc.StatusCode.UNAVAILABLE, "going down"))
    with AuthClient("127.0.0.1", robot.port, root_certificates=pki.roots, timeout=TIMEOUT, retries=1) as client:
        monkeypatch.setattr(_client.threading, "Timer", NoThreadLeft)
        got = resolve(client.auth_async("admin", PASSWORD), worst_case_seconds(TIMEOUT, 1) + 2)
    assert_shown_safely(got)
    assert len(robot.requests) == 1


def in_thread(function, bound):
    """Run ``function`` in a daemon thread; its result, or a test failure once ``bound`` seconds pass."""
    future = Future()

    def run():
        try:
            future.set_result(function())
        except BaseException as exc:  # handed to the test through the future
            future.set_exception(exc)

    threading.Thread(target=run, daemon=True).start()
    try:
        return future.result(timeout=bound)
    except FutureTimeoutError:
        pytest.fail("still running after %.1f s" % bound)


def test_session_with_hostile_robots_returns_typed_errors_within_the_bound(robot_factory, ca_file, cache_dirs):
    robots = [
        robot_factory(Reply(1, 1, "t\u00f8ken", "", True)),
        robot_factory(Reply(1, 1, "\x1b[2J\x1b[Hfake", "", True)),
        robot_factory(Reply(2, 0, "", "\x1b[2J\x1b[H fake PLAY RECAP \u202e" + PASSWORD, True)),
        robot_factory(abort(grpc.StatusCode.PERMISSION_DENIED, "\x1b]0;owned\x07\r\nnope")),
        robot_factory(sleeper(0.2, Reply(1, 1, MINTED, "", True))),
    ]
    settings_list = [settings_for(robot.port, ca_file, cache_dirs()) for robot in robots]
    bound = deadline_for(settings_list, 200)
    started = time.monotonic()
    results = in_thread(lambda: Session(slots=16).obtain_many(settings_list), bound + 5)
    elapsed = time.monotonic() - started
    assert elapsed <= bound
    # Nothing waits for a deadline: every robot answered at once.
    assert elapsed <= worst_case_seconds(TIMEOUT, RETRIES) + 2
    assert [type(result).__name__ for result in results] == [
        "MalformedResponseError", "MalformedResponseError", "InternalServerError", "PermissionDeniedError", "Outcome"]
    for result in results[:4]:
        assert_shown_safely(result)
    assert "\\x1b[2J\\x1b[H fake PLAY RECAP \\u202e********" in results[2].message
    assert "\\x1b]0;owned\\x07 nope" in results[3].message
    assert results[4].token == MINTED
    for settings in settings_list[:4]:
        assert os.listdir(settings.token_cache) == []


# -- sanitize ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[2J\x1b[H fake PLAY RECAP", "\\x1b[2J\\x1b[H fake PLAY RECAP"),
    ("line one\r\nline two\n\n\tthree", "line one line two three"),
    ("  padded \x0b\x0c ", "padded"),
    ("abc\u202edef", "abc\\u202edef"),
    ("a\u2066b\u2069c", "a\\u2066b\\u2069c"),
    ("para\u2028graph\u2029end", "para\\u2028graph\\u2029end"),
    ("nul\x00byte", "nul\\x00byte"),
    ("del\x7f c1\x85\x9b", "del\\x7f c1\\x85\\x9b"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
    ("private \ue000 \U0010fffd", "private \\ue000 \\U0010fffd"),
    ("tag \U000e0041 unassigned \u0378", "tag \\U000e0041 unassigned \\u0378"),
    ("caf\u00e9 \U0001f600 \u65e5\u672c", "caf\u00e9 \U0001f600 \u65e5\u672c"),
    ("already \\x1b escaped", "already \\x1b escaped"),
    (b"bytes \xff\x1b", "bytes \\xff\\x1b"),
    (42, "42"),
])
def test_sanitize_escapes_what_a_terminal_would_obey(raw, shown):
    assert _errors.sanitize(raw) == shown


def test_sanitize_caps_the_length():
    assert _errors.sanitize("A" * 100000) == "A" * 197 + "..."
    assert _errors.sanitize("abcdefgh", limit=5) == "ab..."
    escaped = _errors.sanitize("\x1b" * 100000)
    assert len(escaped) <= 200 and escaped.endswith("...") and "\x1b" not in escaped
    assert escaped[:-3] == "\\x1b" * (len(escaped[:-3]) // 4)  # never half an escape
    tags = _errors.sanitize("\U000e0041" * 1000)
    assert tags.startswith("\\U000e0041") and len(tags) <= 200 and tags[:-3] == "\\U000e0041" * (len(tags[:-3]) // 10)


def test_sanitize_masks_secrets():
    assert _errors.sanitize("login pw=%s failed" % PASSWORD, (PASSWORD,)) == "login pw=******** failed"
    assert _errors.sanitize("\x1b[31m%s\x1b[0m" % PASSWORD, (PASSWORD,)) == "\\x1b[31m********\\x1b[0m"
    assert _errors.sanitize("abc", ("", None)) == "abc"
    # A secret straddling the length cap is masked, not cut into a readable prefix of itself.
    near_the_cap = _errors.sanitize("A" * 190 + PASSWORD, (PASSWORD,))
    assert PASSWORD not in near_the_cap and PASSWORD[:10] not in near_the_cap
    # A secret followed by a newline, or surrounded by controls, is still masked.
    assert _errors.sanitize("%s\r\n%s" % (PASSWORD, TOKEN), (PASSWORD, TOKEN)) == "******** ********"


@hypothesis.settings(max_examples=500, deadline=None)
@given(text=st.one_of(hostile_text, st.text(), repeated, st.text(st.characters(codec=None, categories=("Cs", "Co", "Cn", "Cc", "Cf")))))
def test_sanitized_text_is_one_safe_capped_line_without_secrets(text):
    shown = _errors.sanitize(text, (PASSWORD, TOKEN))
    assert not unsafe_characters(shown), ascii(shown)
    assert len(shown) <= 200
    assert PASSWORD not in shown and TOKEN not in shown
    assert shown == shown.strip(" ") and "  " not in shown and not any(char in shown for char in "\t\r\n\x0b\x0c")
    assert _errors.sanitize(shown) == shown  # what is safe stays as it is


def test_header_error_message_is_shown_as_the_robot_says_it():
    error = _errors.error_for_response("CODE_INVALID_REQUEST", "STATUS_UNKNOWN", "robot", 443,
                                       header_message="bad\x1b[2J request for %s\n" % PASSWORD, secrets=(PASSWORD,))
    assert isinstance(error, _errors.InvalidRequestError)
    assert error.message.endswith("(robot says: bad\\x1b[2J request for ********)")
    quiet = _errors.error_for_response("CODE_INTERNAL_SERVER_ERROR", "STATUS_OK", "robot", 443)
    assert "robot says" not in quiet.message


def test_grpc_details_are_sanitized():
    error = _errors.error_for_grpc("PERMISSION_DENIED", "\x1b]0;owned\x07 no \u202e%s" % PASSWORD, "robot", 443, (PASSWORD,))
    assert error.message.endswith("(\\x1b]0;owned\\x07 no \\u202e********)")


# -- usable_token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token, usable", [
    (MINTED, True), ("!", True), ("~" * 16384, True), ("a" * 16385, False), ("", False), ("two words", False),
    ("tab\tbed", False), ("t\u00f8ken", False), ("\x7f", False), ("token\n", False), ("\uff21\uff22", False),
    (None, False), (b"bytes", False), (42, False),
])
def test_usable_token_boundaries(token, usable):
    assert usable_token(token) is usable


@hypothesis.settings(max_examples=300, deadline=None)
@given(st.one_of(tokens, st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7f), max_size=30)))
def test_usable_token_is_printable_ascii_of_bounded_length(token):
    assert usable_token(token) is is_usable(token)
