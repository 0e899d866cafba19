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

from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidOptionError
from ansible_collections.spot.auth.plugins.module_utils._token_cache import TokenCache, TokenCacheError, entry_name
from ansible_collections.spot.auth.tests.unit.conftest import COLLECTION_ROOT


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
