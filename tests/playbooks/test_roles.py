# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The playbooks spot.auth.rotate and spot.auth.provision in real ansible-playbook runs against simulated fleets.

Every run's claims (summary, report, outputs) are checked against what the simulated robots recorded.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import stat
import xml.etree.ElementTree as ET

import pytest
from helpers import edit_inventory, forget_requests, sent, spot_hosts, strip_credentials, write_vars

from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient
from ansible_collections.spot.auth.plugins.module_utils._errors import SpotAuthError

pytestmark = pytest.mark.timeout(300)

ROTATE = "- ansible.builtin.import_playbook: spot.auth.rotate\n"
PROVISION = "- ansible.builtin.import_playbook: spot.auth.provision\n"
WRONG_PASSWORD = "Wrong-Pass-5d1c2"
NEW_PASSWORD = "New-Pass-9e0b7"
COMMON_PASSWORD = "Ci-Pass-41f6a"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


# ---- helpers ---------------------------------------------------------------------------------


def cache_entry(cache_dir, robot):
    return os.path.join(str(cache_dir), "%s.%s.jwt" % (robot.serial, robot.username))


def seed_cache(cache_dir, robot, token):
    """Put a token in the cache as spot.auth.token would (directory 0700, entry 0600)."""
    os.makedirs(str(cache_dir), mode=0o700, exist_ok=True)
    path = cache_entry(cache_dir, robot)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def read_entry(cache_dir, robot):
    path = cache_entry(cache_dir, robot)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read().strip()


def lock_out(robot, ca_pem):
    """Six wrong passwords, as a careless script would send them: the robot locks the user."""
    with AuthClient("127.0.0.1", robot.port, root_certificates=ca_pem, retries=6, timeout=5) as client:
        for _attempt in range(6):
            with pytest.raises(SpotAuthError):
                client.auth(robot.username, "careless-guess")


def mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def load_json(path):
    with open(str(path)) as handle:
        return json.load(handle)


def assert_no_secret(text, secrets, where):
    for secret in secrets:
        assert secret not in text, "a secret appears in %s" % where
    assert not JWT.search(text), "a token appears in %s" % where


def role_task(run, name):
    """{host: result} of the role task called ``name`` (callbacks see it as '<role> : <name>')."""
    for play in run.data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == name:
                return task["hosts"]
    raise KeyError(name)


def summary_lines(run):
    (result,) = role_task(run, "Show the summary").values()
    return result["msg"]


# ---- spot.auth.rotate --------------------------------------------------------------------------

ROTATE_FAULTS = {"robot-012": "down", "robot-013": "wrong-ca", "robot-014": "internal"}
ROTATE_EXPECTED = {
    # robot: (outcome, error_type, what the robot received during the run)
    "robot-001": ("refreshed", None, ["token:STATUS_OK"]),
    "robot-002": ("refreshed", None, ["token:STATUS_OK"]),
    "robot-003": ("refreshed", None, ["token:STATUS_OK"]),
    "robot-004": ("refreshed", None, ["token:STATUS_OK"]),
    "robot-005": ("refreshed", None, ["token:STATUS_OK"]),
    "robot-006": ("refreshed", None, ["token:STATUS_OK"]),
    # expired cache entry: refused, then the password
    "robot-007": ("relogged_in", None, ["token:STATUS_INVALID_TOKEN", "password:STATUS_OK"]),
    # no cache entry: the password
    "robot-008": ("relogged_in", None, ["password:STATUS_OK"]),
    # wrong password: sent once, never again
    "robot-009": ("failed", "InvalidLoginError", ["password:STATUS_INVALID_LOGIN"]),
    "robot-010": ("failed", "InvalidLoginError", ["token:STATUS_INVALID_TOKEN", "password:STATUS_INVALID_LOGIN"]),
    # locked out before the run: one attempt, then nothing
    "robot-011": ("failed", "TemporarilyLockedOutError", ["password:STATUS_TEMPORARILY_LOCKED_OUT"]),
    "robot-012": ("failed", "UnableToConnectToRobotError", []),
    "robot-013": ("failed", "CertificateVerificationError", []),
    "robot-014": ("failed", "InternalServerError", ["password:CODE_INTERNAL_SERVER_ERROR"]),
    # fresh cache entry and a wrong password: the token is re-minted, the password never sent
    "robot-015": ("refreshed", None, ["token:STATUS_OK"]),
    # no cache entry, a given token (rotate_token): re-minted
    "robot-016": ("refreshed", None, ["token:STATUS_OK"]),
    # no cache entry, a given token that is expired: refused, then the password once
    "robot-017": ("relogged_in", None, ["token:STATUS_INVALID_TOKEN", "password:STATUS_OK"]),
}


def test_rotate_summary_and_report_match_what_the_robots_saw(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=17, faults=ROTATE_FAULTS)
    cache = tmp_path / "cache"
    seeded = {}
    for name in ("robot-001", "robot-002", "robot-003", "robot-004", "robot-005", "robot-006", "robot-015"):
        seeded[name] = seed_cache(cache, fleet[name], fleet[name].mint_token())
    for name in ("robot-007", "robot-010"):
        seeded[name] = seed_cache(cache, fleet[name], fleet[name].mint_token(lifetime=-5))
    given = {"robot-016": fleet["robot-016"].mint_token(), "robot-017": fleet["robot-017"].mint_token(lifetime=-5)}

    def configure(data):
        hosts = spot_hosts(data)
        for name in ("robot-009", "robot-010", "robot-015", "robot-016"):
            hosts[name]["spot_password"] = WRONG_PASSWORD
        for name, token in given.items():
            hosts[name]["rotate_token"] = token

    edit_inventory(inventory, configure)
    secrets.update([WRONG_PASSWORD, *seeded.values(), *given.values()])  # every run is checked for them at -vvvv
    lock_out(fleet["robot-011"], fleet.ca_pem)
    forget_requests(fleet)
    report_path = tmp_path / "reports" / "rotate.json"
    report_path.parent.mkdir()
    args = write_vars(tmp_path, "vars.yml", {"rotate_token_cache": str(cache), "rotate_report": str(report_path),
                                             "rotate_max_fail_percentage": 40})

    run = run_playbook(ROTATE, inventory, args=args)

    assert run.returncode == 0, run.text  # 6 of 17 failed: 35.3 % <= 40 %
    for name, (_outcome, _error_type, requests) in ROTATE_EXPECTED.items():
        assert sent(fleet[name]) == requests, name
        assert sum(1 for r in sent(fleet[name]) if r.startswith("password:")) <= 1, name

    report = load_json(report_path)
    assert mode(report_path) == 0o600
    assert {name: (r["outcome"], r.get("error_type")) for name, r in report["robots"].items()} == {
        name: expected[:2] for name, expected in ROTATE_EXPECTED.items()}
    assert report["counts"] == {"refreshed": 8, "relogged_in": 3, "kept": 0, "failed": 6}
    assert report["failed_by_error_type"] == {
        "InvalidLoginError": 2, "TemporarilyLockedOutError": 1, "UnableToConnectToRobotError": 1,
        "CertificateVerificationError": 1, "InternalServerError": 1}
    assert [a["robot"] for a in report["attention"]] == ["robot-%03d" % n for n in range(9, 15)]
    assert report["robots_total"] == 17 and report["robots_failed"] == 6 and report["failed_percentage"] == 35.3
    assert report["passed"] is True and report["max_fail_percentage"] == 40.0 and report["check_mode"] is False
    assert report["robots"]["robot-017"]["method"] == "password"
    assert report["robots"]["robot-001"]["expires_at"].endswith("Z")

    # The terminal summary says the same.
    lines = summary_lines(run)
    assert lines[0].startswith("spot.auth.rotate: 17 robots: 8 refreshed, 3 re-logged-in, 0 kept, 6 failed (35.3 %")
    assert "needs attention:" in lines and "report: %s" % report_path in lines
    assert any(line.split()[:2] == ["robot-011", "TemporarilyLockedOutError"] for line in lines)

    # Fresh tokens went to the cache (0600); refusals left no entry.
    for name, (outcome, _error, _requests) in ROTATE_EXPECTED.items():
        entry = read_entry(cache, fleet[name])
        if outcome != "failed":
            assert entry and entry != seeded.get(name) and entry != given.get(name), name
            assert mode(cache_entry(cache, fleet[name])) == 0o600
        elif name != "robot-010":
            assert entry is None, name
    assert mode(cache) == 0o700

    fresh = [read_entry(cache, robot) for robot in fleet]
    assert_no_secret(report_path.read_text(), sorted(secrets) + [token for token in fresh if token], "the report")


def test_rotate_proves_a_new_password_and_replaces_the_cached_tokens(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=6)
    cache = tmp_path / "cache"
    old_tokens = [seed_cache(cache, robot, robot.mint_token()) for robot in fleet]
    old_passwords = [robot.password for robot in fleet]
    for robot in list(fleet)[:5]:  # the administrator forgot robot-006
        robot.set_password(robot.username, NEW_PASSWORD)
    secrets.update([NEW_PASSWORD, *old_tokens])
    forget_requests(fleet)
    report_path = tmp_path / "rotate.json"
    args = write_vars(tmp_path, "vars.yml", {"rotate_token_cache": str(cache), "rotate_report": str(report_path),
                                             "rotate_new_password": NEW_PASSWORD,
                                             "rotate_max_fail_percentage": 20})

    run = run_playbook(ROTATE, inventory, args=args)

    assert run.returncode == 0, run.text
    assert "ESTABLISH LOCAL CONNECTION" in run.text  # every run is made at -vvvv and searched for secrets
    report = load_json(report_path)
    assert report["mode"] == "new_password"
    assert report["counts"] == {"verified": 5, "still_old": 1, "failed": 0}
    assert report["attention"] == [] and report["still_old"] == ["robot-006"]
    assert report["robots"]["robot-006"]["outcome"] == "still_old"
    for robot in list(fleet)[:5]:
        # The new password, once: the login proves it, and its token replaces the cache entry.
        assert sent(robot) == ["password:STATUS_OK"], robot.name
    # The robot that still has the old password refused the new one once, then accepted the current one, once.
    assert sent(fleet["robot-006"]) == ["password:STATUS_INVALID_LOGIN", "password:STATUS_OK"]
    assert "still on the old password (1;" in "\n".join(summary_lines(run))
    new_tokens = [read_entry(cache, robot) for robot in fleet]
    assert all(new != old for new, old in zip(new_tokens[:5], old_tokens[:5]))
    assert new_tokens[5] == old_tokens[5]  # robot-006 keeps its still valid token

    known = old_passwords + [NEW_PASSWORD] + old_tokens + new_tokens
    assert_no_secret(run.text, known, "the -vvvv output")
    assert_no_secret(report_path.read_text(), known, "the report")

    # The cache now holds tokens that re-mint, although the inventory still has the old passwords.
    forget_requests(fleet)
    run = run_playbook(ROTATE, inventory, args=write_vars(tmp_path, "again.yml", {
        "rotate_token_cache": str(cache), "rotate_report": str(report_path)}))
    assert run.returncode == 0, run.text
    assert load_json(report_path)["counts"] == {"refreshed": 6, "relogged_in": 0, "kept": 0, "failed": 0}
    assert [sent(robot) for robot in fleet] == [["token:STATUS_OK"]] * 6


def test_check_mode_contacts_no_robot_and_writes_nothing(fleet_factory, run_playbook, tmp_path):
    fleet, inventory = fleet_factory(robots=4)
    cache = tmp_path / "cache"
    seed_cache(cache, fleet["robot-001"], fleet["robot-001"].mint_token())
    seed_cache(cache, fleet["robot-002"], fleet["robot-002"].mint_token(lifetime=-5))
    seed_cache(cache, fleet["robot-004"], fleet["robot-004"].mint_token(lifetime=600))
    before = {name: os.stat(os.path.join(str(cache), name)).st_mtime for name in os.listdir(str(cache))}
    forget_requests(fleet)
    out = tmp_path / "out"
    args = write_vars(tmp_path, "vars.yml", {
        "rotate_token_cache": str(cache), "rotate_token_cache_margin": 3600,
        "rotate_report": str(tmp_path / "rotate.json"),
        "provision_output_dir": str(out), "provision_token_cache": str(cache)})

    rotate = run_playbook(ROTATE, inventory, args=args, check=True)
    provision = run_playbook(PROVISION, inventory, args=args, check=True)

    assert rotate.returncode == 0, rotate.text
    assert provision.returncode == 0, provision.text
    assert [robot.request_count for robot in fleet] == [0] * 4
    assert not (tmp_path / "rotate.json").exists() and not out.exists()
    assert {name: os.stat(os.path.join(str(cache), name)).st_mtime for name in os.listdir(str(cache))} == before

    lines = summary_lines(rotate)
    assert lines[0].startswith("spot.auth.rotate (check mode): 4 robots: 1 would keep, 1 would refresh, 2 would log in")
    plans = {line.split()[0]: line for line in lines[1:]}
    assert "would keep the cached token" in plans["robot-001"]
    assert "would log in with the password: the cached token expired" in plans["robot-002"]
    assert "would log in with the password: no cache entry" in plans["robot-003"]
    assert "would re-mint the cached token" in plans["robot-004"]
    assert summary_lines(provision)[0].startswith(
        "spot.auth.provision (check mode): 4 robots: 1 would reuse, 1 would remint, 2 would log in")


def test_max_fail_percentage_passes_at_the_limit_and_fails_above_it(fleet_factory, run_playbook, tmp_path):
    fleet, inventory = fleet_factory(robots=5, faults={"robot-003": "down"})
    settings = {"rotate_token_cache": str(tmp_path / "cache"), "rotate_report": str(tmp_path / "rotate.json"),
                "rotate_retries": 0}

    at_limit = run_playbook(ROTATE, inventory, args=write_vars(tmp_path, "a.yml", dict(settings, rotate_max_fail_percentage=20)))
    assert at_limit.returncode == 0, at_limit.text  # 1 of 5 = 20 %, not more than 20 %
    assert load_json(tmp_path / "rotate.json")["passed"] is True

    forget_requests(fleet)
    above = run_playbook(ROTATE, inventory, args=write_vars(tmp_path, "b.yml", dict(settings, rotate_max_fail_percentage=19.9)))
    assert above.returncode == 2, above.text
    # Every robot was still tried, the summary and the report came first, and only the verdict failed.
    assert [len(sent(robot)) for robot in fleet] == [1, 1, 0, 1, 1]
    # The summary is the task that fails the play, so it is the last thing printed either way.
    (verdict,) = role_task(above, "Show the summary").values()
    assert verdict["outcome"] == "failed"
    assert verdict["msg"][0].endswith("the play fails above 19.9 %: FAILED)")
    assert "1 of 5 robots failed (20.0 %)" in verdict["msg"][-1] and "robot-003" in verdict["msg"][-1]
    report = load_json(tmp_path / "rotate.json")
    assert report["passed"] is False and report["attention"][0]["robot"] == "robot-003"


# ---- spot.auth.provision -----------------------------------------------------------------------


def test_provision_hands_the_tokens_to_later_steps(fleet_factory, run_playbook, tmp_path, secrets):
    bosdyn = pytest.importorskip("bosdyn.client")
    from bosdyn.client.auth import AuthClient as SdkAuthClient
    from bosdyn.client.token_cache import TokenCacheFilesystem

    fleet, inventory = fleet_factory(robots=5, faults={"robot-005": "down"}, password=COMMON_PASSWORD)

    def configure(data):
        strip_credentials(data)  # credentials come from the environment, as in a CI job
        del spot_hosts(data)["robot-004"]["spot_serial"]  # a robot whose serial is not known

    edit_inventory(inventory, configure)
    secrets.add(COMMON_PASSWORD)
    env = {"BOSDYN_CLIENT_USERNAME": "admin", "BOSDYN_CLIENT_PASSWORD": COMMON_PASSWORD}
    out = tmp_path / "out"
    args = write_vars(tmp_path, "vars.yml", {"provision_output_dir": str(out), "provision_max_fail_percentage": 20,
                                             "provision_retries": 0})

    run = run_playbook(PROVISION, inventory, args=args, env=env)

    assert run.returncode == 0, run.text
    cache = out / "token-cache"
    assert (mode(out), mode(cache)) == (0o700, 0o700)
    for name in ("tokens.json", "report.json", "junit.xml"):
        assert mode(out / name) == 0o600, name
    tokens = load_json(out / "tokens.json")
    assert sorted(tokens) == ["robot-001", "robot-002", "robot-003", "robot-004"]
    for name, entry in tokens.items():
        robot = fleet[name]
        assert entry["hostname"] == "127.0.0.1" and entry["port"] == robot.port and entry["username"] == "admin"
        assert entry["expires_at"].endswith("Z") and entry["issued_at"].endswith("Z")
        with open(entry["cache_file"]) as handle:
            assert handle.read() == entry["token"]
        assert mode(entry["cache_file"]) == 0o600
    assert tokens["robot-004"]["serial"] is None and tokens["robot-004"]["sdk_cache_name"] is None
    assert os.path.basename(tokens["robot-004"]["cache_file"]) == "127.0.0.1_%d.admin.jwt" % fleet["robot-004"].port

    # A later Python step with bosdyn-client reads the SDK's cache and re-mints over TLS, without a password.
    sdk_cache = TokenCacheFilesystem(str(cache))
    forget_requests(fleet)
    for name in ("robot-001", "robot-002", "robot-003"):
        robot = fleet[name]
        assert tokens[name]["sdk_cache_name"] == "%s.admin" % robot.serial
        cached = sdk_cache.read("%s.admin" % robot.serial).decode("ascii")
        assert cached == tokens[name]["token"]
        # One SDK per robot: the SDK keeps one robot object per address, and every robot is at 127.0.0.1.
        sdk = bosdyn.create_standard_sdk("ci-step", cert_resource_glob=fleet.ca_path)
        sdk_robot = sdk.create_robot("127.0.0.1")
        sdk_robot.update_secure_channel_port(robot.port)
        fresh = sdk_robot.ensure_client(SdkAuthClient.default_service_name).auth_with_token(cached, timeout=10)
        assert fresh and fresh != cached
        assert sent(robot) == ["token:STATUS_OK"] and robot.requests[0].client_name.startswith("ci-step")

    # One testcase per robot; the failure carries the error_type and message.
    suite = ET.parse(str(out / "junit.xml")).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("5", "1")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert sorted(cases) == ["robot-%03d" % n for n in range(1, 6)]
    failure = cases["robot-005"].find("failure")
    assert failure.get("type") == "UnableToConnectToRobotError" and "refused" in failure.get("message")
    assert all(cases[name].find("failure") is None for name in tokens)

    report = load_json(out / "report.json")
    assert report["counts"] == {"logged_in": 4, "reminted": 0, "reused": 0, "failed": 1}
    known = [COMMON_PASSWORD] + [entry["token"] for entry in tokens.values()]
    assert_no_secret(run.text, known, "the -vvvv output")
    assert_no_secret((out / "report.json").read_text(), known, "the report")
    assert_no_secret((out / "junit.xml").read_text(), known, "the JUnit report")

    # A second job step: the cached tokens are handed on again without contacting the robots.
    forget_requests(fleet)
    again = run_playbook(PROVISION, inventory, args=args, env=env)
    assert again.returncode == 0, again.text
    assert [robot.request_count for robot in fleet] == [0, 0, 0, 0, 0]
    logins = role_task(again, "Authenticate each robot into the token cache")
    assert not any(result["changed"] for result in logins.values())
    assert load_json(out / "tokens.json") == tokens
    assert load_json(out / "report.json")["counts"]["reused"] == 4

    # The exit code tells the job whether the fleet is usable.
    strict = run_playbook(PROVISION, inventory, args=args + ["-e", "provision_max_fail_percentage=10"], env=env)
    assert strict.returncode == 2, strict.text
    assert load_json(out / "report.json")["passed"] is False
    assert ET.parse(str(out / "junit.xml")).getroot().find("testsuite").get("failures") == "1"
