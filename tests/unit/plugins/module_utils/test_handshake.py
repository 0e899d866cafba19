# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cache first, then re-mint, then password: against a simulated robot over TLS."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import time

import pytest

from spot_auth_sim.fleet import Fleet

from ansible_collections.spot.auth.plugins.module_utils import _handshake
from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidLoginError, InvalidTokenError
from ansible_collections.spot.auth.plugins.module_utils._options import settings_from
from ansible_collections.spot.auth.plugins.module_utils._tokens import TokenTimes


@pytest.fixture(scope="module")
def fleet():
    with Fleet(robots=2, rate_limit=0) as running:
        yield running


@pytest.fixture
def robot(fleet):
    fleet.reset()
    return fleet["robot-001"]


def settings_for(robot, tmp_path, **changes):
    params = {"hostname": "127.0.0.1", "port": robot.port, "username": robot.username, "password": robot.password,
              "ca_cert": robot.ca_path, "serial": robot.serial, "token_cache": str(tmp_path / "cache"), "retries": 0}
    params.update(changes)
    return settings_from(params)


def kinds(robot):
    return [record.kind for record in robot.requests]


def test_first_login_fills_the_cache_and_the_second_makes_no_request(robot, tmp_path):
    settings = settings_for(robot, tmp_path)
    first = _handshake.obtain(settings)
    assert first.method == "password" and first.minted
    entry = tmp_path / "cache" / ("%s.admin.jwt" % robot.serial)
    assert entry.read_text() == first.token
    second = _handshake.obtain(settings)
    assert (second.method, second.token, second.minted) == ("cache", first.token, False)
    assert kinds(robot) == ["password"]


def test_entry_near_expiry_is_reminted_not_logged_in(robot, tmp_path):
    settings = settings_for(robot, tmp_path)
    near = robot.mint_token(lifetime=600)  # less than the one-hour margin left
    settings.cache().write(settings.cache_entry, near)
    outcome = _handshake.obtain(settings)
    assert outcome.method == "token" and outcome.token != near
    assert TokenTimes(outcome.token).expires_at > TokenTimes(near).expires_at
    assert kinds(robot) == ["token"]
    assert settings.cache().read(settings.cache_entry) == outcome.token


def test_refused_cached_token_falls_back_to_the_password(robot, tmp_path):
    settings = settings_for(robot, tmp_path)
    expired = robot.mint_token(lifetime=1, issued_at=time.time() - 7200)
    settings.cache().write(settings.cache_entry, expired)
    outcome = _handshake.obtain(settings)
    assert outcome.method == "password"
    assert kinds(robot) == ["token", "password"]


def test_refused_cached_token_without_a_password_is_invalid_token(robot, tmp_path):
    settings = settings_for(robot, tmp_path, password=None, token="x.y.z")
    settings.cache().write(settings.cache_entry, robot.mint_token(lifetime=1, issued_at=time.time() - 7200))
    with pytest.raises(InvalidTokenError):
        _handshake.obtain(settings)


def test_token_from_another_robot_is_refused(fleet, robot, tmp_path):
    foreign = fleet["robot-002"].mint_token()
    with pytest.raises(InvalidTokenError):
        _handshake.obtain(settings_for(robot, tmp_path, password=None, token=foreign, token_cache=None))


def test_unsafe_entry_is_reported_and_replaced(robot, tmp_path):
    settings = settings_for(robot, tmp_path)
    settings.cache().write(settings.cache_entry, robot.mint_token())
    path = tmp_path / "cache" / settings.cache_entry
    os.chmod(str(path), 0o644)
    outcome = _handshake.obtain(settings)
    assert outcome.method == "password" and "readable by others" in outcome.warnings[0]
    assert oct(os.stat(str(path)).st_mode & 0o777) == "0o600"


def test_wrong_password_is_sent_once_and_never_cached(robot, tmp_path):
    settings = settings_for(robot, tmp_path, password="not-it")
    with pytest.raises(InvalidLoginError):
        _handshake.obtain(settings)
    assert kinds(robot) == ["password"]
    assert os.listdir(str(tmp_path / "cache")) == [settings.cache_entry[:-len(".jwt")] + ".refused"]  # no token
    refused_file = (tmp_path / "cache" / os.listdir(str(tmp_path / "cache"))[0]).read_bytes()
    assert b"not-it" not in refused_file and oct(os.stat(str(tmp_path / "cache")).st_mode & 0o777) == "0o700"
    with pytest.raises(InvalidLoginError, match="not sent again before"):
        _handshake.obtain(settings)  # another run: the memory answers, the robot is not asked
    assert kinds(robot) == ["password"]


def test_sdk_token_cache_reads_our_entry(robot, tmp_path):
    token_cache = pytest.importorskip("bosdyn.client.token_cache")
    settings = settings_for(robot, tmp_path)
    outcome = _handshake.obtain(settings)
    sdk_cache = token_cache.TokenCacheFilesystem(str(tmp_path / "cache"))
    assert sdk_cache.read("%s.%s" % (robot.serial, robot.username)).decode() == outcome.token


def test_refresh_mode_proves_the_password_and_replaces_a_fresh_entry(robot, tmp_path):
    settings = settings_for(robot, tmp_path)
    cached = _handshake.obtain(settings).token
    refreshed = _handshake.obtain(settings_for(robot, tmp_path, token_cache_mode="refresh"))
    assert refreshed.method == "password" and refreshed.token != cached
    assert settings.cache().read(settings.cache_entry) == refreshed.token
    assert kinds(robot) == ["password", "password"]


def test_refusals_only_mode_neither_reads_nor_writes_tokens_but_remembers_refusals(robot, tmp_path):
    settings = settings_for(robot, tmp_path)
    cached = _handshake.obtain(settings).token
    other = _handshake.obtain(settings_for(robot, tmp_path, token_cache_mode="refusals_only"))
    assert other.method == "password" and settings.cache().read(settings.cache_entry) == cached  # left alone
    wrong = settings_for(robot, tmp_path, token_cache_mode="refusals_only", password="old-and-wrong")
    for _attempt in range(2):
        with pytest.raises(InvalidLoginError):
            _handshake.obtain(wrong)
    assert kinds(robot) == ["password", "password", "password"]  # the wrong one reached the robot once
    assert settings.cache().read(settings.cache_entry) == cached
