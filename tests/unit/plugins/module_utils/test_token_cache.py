# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The token cache: private from creation, atomic, and suspicious of what it finds."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from spot_auth_sim.fleet import Fleet

from ansible_collections.spot.auth.plugins.module_utils import _handshake, _token_cache, _tokens
from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidOptionError
from ansible_collections.spot.auth.plugins.module_utils._options import settings_from
from ansible_collections.spot.auth.plugins.module_utils._token_cache import TokenCache, TokenCacheError, entry_name
from ansible_collections.spot.auth.tests.unit.conftest import COLLECTION_ROOT, MINTED, PASSWORD


def fake_jwt(exp, filler=""):
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return "%s.%s.sig" % (part({"alg": "ES256"}), part({"exp": exp, "iat": exp - 43200, "pad": filler}))


def mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


def test_entry_names_follow_the_sdk_when_the_serial_is_known():
    assert entry_name("admin", "10.0.0.5", 443, serial="BD-1234") == "BD-1234.admin.jwt"
    assert entry_name("admin", "10.0.0.5", 443) == "10.0.0.5_443.admin.jwt"
    assert entry_name("a/b", "../x", 1) == ".._x_1.a_b.jwt"


def test_directory_0700_and_entries_0600_from_creation(tmp_path):
    old = os.umask(0)  # the loosest umask: modes must not depend on it
    try:
        cache = TokenCache(str(tmp_path / "cache"))
        token = fake_jwt(time.time() + 3600)
        cache.write("r.admin.jwt", token)
    finally:
        os.umask(old)
    assert mode(tmp_path / "cache") == 0o700
    assert mode(tmp_path / "cache" / "r.admin.jwt") == 0o600
    assert cache.read("r.admin.jwt") == token
    assert os.listdir(str(tmp_path / "cache")) == ["r.admin.jwt"]


def test_missing_and_corrupt_entries_read_as_nothing(tmp_path):
    cache = TokenCache(str(tmp_path))
    os.chmod(str(tmp_path), 0o700)
    assert cache.read("none.jwt") is None
    for name, data in (("garbage.jwt", b"\x00\xffnot a token"), ("noexp.jwt", b"a.b.c"), ("big.jwt", b"x" * 70000)):
        fd = os.open(str(tmp_path / name), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, data)
        os.close(fd)
        assert cache.read(name) is None
    cache.write("garbage.jwt", fake_jwt(time.time() + 60))
    assert cache.read("garbage.jwt") is not None


def test_symlinked_directory_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(InvalidOptionError, match="token_cache: .* is a symlink"):
        TokenCache(str(tmp_path / "link")).read("x.jwt")


def test_directory_open_to_others_is_refused(tmp_path):
    directory = tmp_path / "open"
    directory.mkdir()
    os.chmod(str(directory), 0o755)
    with pytest.raises(InvalidOptionError, match=r"token_cache: .*\(mode 0755\); it must be 0700"):
        TokenCache(str(directory)).write("x.jwt", fake_jwt(time.time()))
    assert os.listdir(str(directory)) == []


def test_planted_symlink_entry_is_not_followed(tmp_path):
    cache = TokenCache(str(tmp_path / "cache"))
    cache.write("other.jwt", fake_jwt(time.time() + 3600))
    target = tmp_path / "elsewhere.txt"
    target.write_text(fake_jwt(time.time() + 3600))
    os.symlink(str(target), str(tmp_path / "cache" / "robot.admin.jwt"))
    with pytest.raises(TokenCacheError, match="is a symlink"):
        cache.read("robot.admin.jwt")
    cache.write("robot.admin.jwt", fake_jwt(time.time() + 7200))
    assert not os.path.islink(str(tmp_path / "cache" / "robot.admin.jwt"))
    assert "7200" not in target.read_text() and mode(target) != 0  # the target was left alone


def test_entry_wider_than_0600_is_refused(tmp_path):
    cache = TokenCache(str(tmp_path / "cache"))
    cache.write("robot.admin.jwt", fake_jwt(time.time() + 3600))
    os.chmod(str(tmp_path / "cache" / "robot.admin.jwt"), 0o644)
    with pytest.raises(TokenCacheError, match=r"readable by others \(mode 0644\)"):
        cache.read("robot.admin.jwt")


def test_entry_owned_by_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    cache = TokenCache(str(tmp_path / "cache"))
    cache.write("robot.admin.jwt", fake_jwt(time.time() + 3600))
    os.chown(str(tmp_path / "cache" / "robot.admin.jwt"), 65534, 65534)
    with pytest.raises(TokenCacheError, match="belongs to another user"):
        cache.read("robot.admin.jwt")


def _writer(directory, name, count, seed):
    cache = TokenCache(directory)
    for number in range(count):
        cache.write(name, fake_jwt(2000000000 + seed * 1000 + number, filler="x" * (number % 7) * 300))


def test_fifty_processes_writing_at_once_never_tear_or_widen_an_entry(tmp_path):
    directory = str(tmp_path / "cache")
    TokenCache(directory).write("shared.jwt", fake_jwt(2000000000))
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_writer, args=(directory, "shared.jwt" if n % 2 else "own-%d.jwt" % n, 20, n))
               for n in range(50)]
    for writer in writers:
        writer.start()
    reader = TokenCache(directory)
    deadline = time.monotonic() + 60
    reads = 0
    while any(writer.is_alive() for writer in writers) and time.monotonic() < deadline:
        assert reader.read("shared.jwt") is not None  # complete and 0600 at every moment
        reads += 1
    for writer in writers:
        writer.join(10)
        assert writer.exitcode == 0
    names = os.listdir(directory)
    assert sorted(names) == sorted(["shared.jwt"] + ["own-%d.jwt" % n for n in range(0, 50, 2)])
    for name in names:
        assert mode(os.path.join(directory, name)) == 0o600
        assert reader.read(name) is not None
    assert reads > 0


KILLED_WRITER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[2])
    from ansible_collections.spot.auth.plugins.module_utils import _token_cache
    real_replace = os.replace
    def stall(*args):  # the data is written and fsynced; die before the rename
        sys.stdout.write("ready\\n"); sys.stdout.flush()
        import time; time.sleep(60)
    os.replace = stall
    _token_cache.TokenCache(sys.argv[1]).write("robot.admin.jwt", "new." + "x" * 16000 + ".token")
""")


def test_writer_killed_mid_write_leaves_the_old_entry_whole(tmp_path):
    directory = str(tmp_path / "cache")
    old = fake_jwt(2000000000)
    TokenCache(directory).write("robot.admin.jwt", old)
    collections_root = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, directory, collections_root],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(10)
    assert TokenCache(directory).read("robot.admin.jwt") == old
    for name in os.listdir(directory):  # the orphaned temporary file is private too
        assert mode(os.path.join(directory, name)) == 0o600


def run_python(script, *args):
    """Run ``script`` in a fresh interpreter (its own ``_SWEPT``): its JSON answer."""
    collections_root = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))
    completed = subprocess.run([sys.executable, "-c", script, collections_root] + [str(arg) for arg in args],
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


def temporaries(directory):
    return sorted(name for name in os.listdir(str(directory)) if name.endswith(".tmp"))


def age(path, seconds, now=None):
    moment = (time.time() if now is None else now) - seconds
    os.utime(str(path), (moment, moment), follow_symlinks=False)


# -- temporary files of killed writers -----------------------------------------------------------

def test_old_temporary_files_of_killed_writers_are_removed_and_nothing_else(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    now = time.time()
    outside = tmp_path / "outside.txt"
    outside.write_text("not the cache's")
    age(outside, 3600, now)
    orphans = [".robot.admin.jwt.k2j3h4x_.tmp", ".BD-1234.admin.jwt.abc.tmp", ".10.0.0.5_443._token.jwt.z.tmp"]
    kept = ["robot.admin.jwt", ".robot.admin.jwt", "robot.admin.jwt.abc.tmp", ".robot.admin.jwt.abc.tmp.bak", ".notes.tmp",
            "x.tmp", ".robot.admin.jwt..tmp", ".robot.admin.jwt.young.tmp"]
    for name in orphans + kept:
        (directory / name).write_text("x")
        age(directory / name, 61, now)
    age(directory / ".robot.admin.jwt.young.tmp", 59, now)  # a writer may still be at it
    (directory / ".dir.jwt.abc.tmp").mkdir()
    age(directory / ".dir.jwt.abc.tmp", 3600, now)
    os.symlink(str(outside), str(directory / ".link.jwt.abc.tmp"))
    age(directory / ".link.jwt.abc.tmp", 3600, now)
    kept += [".dir.jwt.abc.tmp", ".link.jwt.abc.tmp"]
    _token_cache.remove_orphans(str(directory), now=now)
    assert sorted(os.listdir(str(directory))) == sorted(kept)
    assert outside.read_text() == "not the cache's"
    assert _token_cache.ORPHAN_SECONDS == 60


def test_a_temporary_file_of_another_user_is_left_alone(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    foreign = directory / ".robot.admin.jwt.abc.tmp"
    foreign.write_text("x")
    os.chown(str(foreign), 65534, 65534)
    age(foreign, 3600)
    _token_cache.remove_orphans(str(directory))
    assert foreign.exists()


USER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.spot.auth.plugins.module_utils._token_cache import TokenCache
    directory, how, plant = sys.argv[2], sys.argv[3], sys.argv[4]
    answer = {}
    cache = TokenCache(directory)
    if how == "read":
        answer["token"] = cache.read("robot.admin.jwt")
    else:
        cache.write("other.admin.jwt", "fresh.token.of-another-entry")
    answer["after first use"] = sorted(os.listdir(directory))
    if plant != "-":  # a killed writer's file, already old, found by the same process later on
        with open(os.path.join(directory, plant), "w") as handle:
            handle.write("x")
        os.utime(os.path.join(directory, plant), (time.time() - 3600, time.time() - 3600))
        TokenCache(directory).read("robot.admin.jwt")
        answer["after second use"] = sorted(os.listdir(directory))
    print(json.dumps(answer))
""")


def test_a_killed_writers_temporary_file_is_removed_by_the_next_process_once_a_minute_old(tmp_path):
    directory = str(tmp_path / "cache")
    old = fake_jwt(2000000000)
    TokenCache(directory).write("robot.admin.jwt", old)
    collections_root = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, directory, collections_root],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(10)
    orphans = temporaries(directory)
    assert len(orphans) == 1 and orphans[0].startswith(".robot.admin.jwt.") and os.path.getsize(
        os.path.join(directory, orphans[0])) > 16000, orphans
    # Young: its writer may still be at work, so a new process leaves it.
    answer = run_python(USER, directory, "read", "-")
    assert answer["token"] == old and answer["after first use"] == sorted(["robot.admin.jwt"] + orphans)
    # A minute old: the first use of the directory by a process removes it; the entry stays whole.
    age(os.path.join(directory, orphans[0]), _token_cache.ORPHAN_SECONDS + 1)
    answer = run_python(USER, directory, "read", "-")
    assert answer == {"token": old, "after first use": ["robot.admin.jwt"]}
    assert TokenCache(directory).read("robot.admin.jwt") == old


def test_orphans_are_looked_for_once_per_process_whether_it_reads_or_writes(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    (directory / ".robot.admin.jwt.first.tmp").write_text("x")
    age(directory / ".robot.admin.jwt.first.tmp", 3600)
    answer = run_python(USER, directory, "write", ".robot.admin.jwt.later.tmp")
    assert answer["after first use"] == ["other.admin.jwt"]
    # Found later by the same process: left for the next process, which removes it.
    assert answer["after second use"] == [".robot.admin.jwt.later.tmp", "other.admin.jwt"]
    answer = run_python(USER, directory, "read", "-")
    assert answer["after first use"] == ["other.admin.jwt"]


# -- what may be written ----------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["", "two words", "t\u00f6ken", "x" * 16385, "tab\there", "line\n", "nul\x00", None],
                         ids=["empty", "space", "non-ASCII", "too long", "tab", "newline", "NUL", "None"])
def test_a_token_that_could_not_be_sent_back_is_not_written(tmp_path, token):
    cache = TokenCache(str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"not a token that can be stored \(printable ASCII, at most 16384 characters\)"):
        cache.write("robot.admin.jwt", token)
    assert not (tmp_path / "cache").exists() or os.listdir(str(tmp_path / "cache")) == []


def test_the_longest_printable_token_is_written(tmp_path):
    cache = TokenCache(str(tmp_path / "cache"))
    token = fake_jwt(2000000000)
    token += "~" * (16384 - len(token))  # in the signature: still a JWT with an expiry
    cache.write("robot.admin.jwt", token)
    assert cache.read("robot.admin.jwt") == token


# -- a cache entry must be what it is filed under -------------------------------------------------

SERIAL = "BD-0001"


def jwt(**claims):
    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return "%s.%s.sig-Secret-4c1d" % (part({"alg": "ES256"}), part(claims))


def scripted_settings(robot, pki, tmp_path, **changes):
    ca = tmp_path / "ca.pem"
    if not ca.exists():
        ca.write_bytes(pki.roots)
    params = {"hostname": "127.0.0.1", "port": robot.port, "username": "admin", "password": PASSWORD, "ca_cert": str(ca),
              "serial": SERIAL, "token_cache": str(tmp_path / "cache"), "retries": 0, "timeout": 10}
    params.update(changes)
    return settings_from(params)


def sent_tokens(robot):
    return [request.token for request in robot.requests if request.token]


@pytest.mark.parametrize("left", [6 * 3600, 600], ids=["hours left", "near expiry"])
@pytest.mark.parametrize("claim, value, reason", [
    ("iss", "BD-9999", "it was issued by another robot"),
    ("sub", "operator", "it belongs to another user"),
])
def test_a_cached_token_of_another_robot_or_user_is_never_sent(robot_factory, pki, tmp_path, claim, value, reason, left):
    robot = robot_factory()
    settings = scripted_settings(robot, pki, tmp_path)
    now = int(time.time())
    claims = {"iss": SERIAL, "sub": "admin", "iat": now + left - 43200, "exp": now + left}
    claims[claim] = value
    foreign = jwt(**claims)
    settings.cache().write(settings.cache_entry, foreign)
    outcome = _handshake.obtain(settings)
    assert (outcome.method, outcome.token) == ("password", MINTED)
    assert outcome.warnings == ["token cache entry %s was not used: %s; a fresh token replaces it"
                                % (tmp_path / "cache" / ("%s.admin.jwt" % SERIAL), reason)]
    # The robot got a password login, and never the other robot's or user's token.
    assert [(request.username, request.password, request.token) for request in robot.requests] == [("admin", PASSWORD, "")]
    assert all(foreign.encode() not in request.SerializeToString() for request in robot.requests)
    assert settings.cache().read(settings.cache_entry) == MINTED


@pytest.mark.parametrize("claims, serial", [
    ({}, SERIAL),
    ({"iss": "BD-9999"}, None),
    ({"iss": 42, "sub": ["operator"]}, SERIAL),
    ({"iss": SERIAL, "sub": "admin"}, SERIAL),
], ids=["no iss or sub", "no serial option", "claims that are not names", "matching"])
def test_absent_or_unknown_names_are_not_held_against_a_cached_token(robot_factory, pki, tmp_path, claims, serial):
    robot = robot_factory()
    settings = scripted_settings(robot, pki, tmp_path, serial=serial)
    now = int(time.time())
    token = jwt(iat=now, exp=now + 6 * 3600, **claims)
    settings.cache().write(settings.cache_entry, token)
    outcome = _handshake.obtain(settings)
    assert (outcome.method, outcome.token, outcome.warnings) == ("cache", token, [])
    assert robot.requests == []


def test_another_users_token_is_not_reminted_into_this_users_entry(tmp_path):
    with Fleet(robots=1, users={"operator": "op-Secret-9a7e"}, rate_limit=0) as fleet:
        robot = fleet["robot-001"]
        settings = settings_from({"hostname": "127.0.0.1", "port": robot.port, "username": robot.username,
                                  "password": robot.password, "ca_cert": robot.ca_path, "serial": robot.serial,
                                  "token_cache": str(tmp_path / "cache"), "retries": 0})
        # The robot would re-mint it, as the operator's: it must not be asked to.
        settings.cache().write(settings.cache_entry, robot.mint_token(username="operator", lifetime=600))
        outcome = _handshake.obtain(settings)
        assert outcome.method == "password" and "it belongs to another user" in outcome.warnings[0]
        assert [record.kind for record in robot.requests] == ["password"]
        assert _tokens.token_claims(outcome.token)["sub"] == robot.username
        assert _tokens.token_claims(settings.cache().read(settings.cache_entry))["sub"] == robot.username


# -- no token is trusted beyond the robot's 12-hour lifetime ---------------------------------------

def test_usable_until_is_the_expiry_capped_at_twelve_hours_from_issue_or_from_when_it_was_obtained():
    now = 1800000000
    assert _tokens.TOKEN_LIFETIME_SECONDS == 12 * 3600
    assert _tokens.TokenTimes(jwt(exp=4102444800)).usable_until(now) == now + 43200
    assert _tokens.TokenTimes(jwt(iat=now - 13 * 3600, exp=4102444800)).usable_until(now) == now - 3600
    assert _tokens.TokenTimes(jwt(iat=now - 60, exp=now + 3600)).usable_until(now) == now + 3600
    assert _tokens.TokenTimes(jwt(iat=now, exp=now + 43200)).usable_until(now - 600) == now + 42600
    assert _tokens.TokenTimes("not.a-jwt").usable_until(now) == now + 43200


@pytest.mark.parametrize("hours_old, method", [(1, "cache"), (11.5, "token"), (13, "token")])
def test_a_cached_token_claiming_a_far_expiry_is_trusted_for_twelve_hours_from_its_file(
        robot_factory, pki, tmp_path, hours_old, method):
    robot = robot_factory()
    settings = scripted_settings(robot, pki, tmp_path)
    decades = jwt(iss=SERIAL, sub="admin", exp=4102444800)  # claims 2100, says nothing of when it was issued
    settings.cache().write(settings.cache_entry, decades)
    age(tmp_path / "cache" / settings.cache_entry, hours_old * 3600)
    outcome = _handshake.obtain(settings)
    assert outcome.method == method  # 11.5 h: less than the hour of token_cache_margin is left
    if method == "cache":
        assert outcome.token == decades and robot.requests == []
    else:
        assert outcome.token == MINTED and sent_tokens(robot) == [decades]
        assert [request.password for request in robot.requests] == [""]
        assert settings.cache().read(settings.cache_entry) == MINTED


def test_a_cached_token_issued_thirteen_hours_ago_is_reminted_however_new_its_file(robot_factory, pki, tmp_path):
    robot = robot_factory()
    settings = scripted_settings(robot, pki, tmp_path)
    stale = jwt(iss=SERIAL, sub="admin", iat=int(time.time()) - 13 * 3600, exp=4102444800)
    settings.cache().write(settings.cache_entry, stale)
    outcome = _handshake.obtain(settings)
    assert (outcome.method, outcome.token) == ("token", MINTED) and sent_tokens(robot) == [stale]
