# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Refusals remembered across ansible-playbook runs through the token cache (refusal_ttl).

A run every few minutes with a wrong password must not lock the account: with ``token_cache`` set,
the first run's refusal is recorded beside the cache entry, and later runs fail at once with the same
error type without asking the robot. Each test counts what the simulated robots recorded.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time

import pytest
from helpers import edit_inventory, outcomes, spot_hosts, write_vars

pytestmark = pytest.mark.timeout(300)

WRONG_PASSWORD = "Wrong-Pass-4b7e2"
NOT_SENT_AGAIN = "not sent again before"
RUNS = 10

MODULE_PLAY = """
- hosts: spot
  gather_facts: false
  tasks:
    - name: login
      spot.auth.token:
        token_cache: "{{ cache_dir }}"
        refusal_ttl: "{{ ttl | default(omit) }}"
      register: login
      failed_when: false
"""

LOOKUP_PLAY = """
- hosts: spot
  gather_facts: false
  tasks:
    - name: lookup
      ansible.builtin.debug:
        msg: "{{ lookup('spot.auth.token', token_cache=cache_dir) | length > 100 }}"
      ignore_errors: true
"""

WARN_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: warn
      ansible.builtin.debug:
        msg: "{{ query('spot.auth.token', 'robot-001', 'robot-002', token_cache=cache_dir, on_error='warn') | map('length') | list }}"
"""


def give_wrong_password(inventory, secrets, name="robot-001"):
    """A wrong spot_password in the inventory (never on the command line: -vvvv prints it)."""
    secrets.add(WRONG_PASSWORD)

    def configure(data):
        spot_hosts(data)[name]["spot_password"] = WRONG_PASSWORD

    edit_inventory(inventory, configure)


def set_password(inventory, name, password):
    edit_inventory(inventory, lambda data: spot_hosts(data)[name].update(spot_password=password))


def wrong_logins(robot):
    return outcomes(robot).count("STATUS_INVALID_LOGIN")


def assert_never_locked(robot):
    assert "STATUS_TEMPORARILY_LOCKED_OUT" not in outcomes(robot), outcomes(robot)
    assert robot.lockout_status(robot.username)["locked"] is False


def assert_no_password_in_cache(cache, secrets):
    """No file of the token cache directory holds a password (tokens are what .jwt entries are for)."""
    names = sorted(os.listdir(str(cache)))
    assert names, "the token cache is empty"
    for name in names:
        raw = (cache / name).read_bytes()
        for secret in secrets:
            assert secret.encode() not in raw, "a secret appears in %s" % name
        assert (os.stat(str(cache / name)).st_mode & 0o777) == 0o600, name
    assert (os.stat(str(cache)).st_mode & 0o777) == 0o700


def refusal_records(cache, robot):
    path = cache / ("%s.%s.refused" % (robot.serial, robot.username))
    return json.loads(path.read_text())["refusals"] if path.exists() else []


def test_ten_module_runs_send_a_wrong_password_once(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=2, rate_limit=0)
    give_wrong_password(inventory, secrets)
    cache = tmp_path / "cache"
    args = write_vars(tmp_path, "vars.yml", {"cache_dir": str(cache)})
    wrong, right = fleet["robot-001"], fleet["robot-002"]
    for run_number in range(1, RUNS + 1):
        run = run_playbook(MODULE_PLAY, inventory, args=args)
        assert run.returncode == 0, run.text
        results = run.results("login")
        refused = results["robot-001"]
        assert refused["error_type"] == "InvalidLoginError", (run_number, refused)
        assert (NOT_SENT_AGAIN in refused["msg"]) is (run_number > 1), (run_number, refused["msg"])
        assert "unless a different credential is given" in refused["msg"] or run_number == 1
        assert "error_type" not in results["robot-002"], results["robot-002"]
        assert wrong_logins(wrong) == 1, (run_number, outcomes(wrong))
        assert_never_locked(wrong)
    assert [record.kind for record in wrong.requests] == ["password"]
    assert outcomes(right) == ["STATUS_OK"]  # later runs read the cache entry
    assert len(refusal_records(cache, wrong)) == 1 and refusal_records(cache, right) == []
    assert_no_password_in_cache(cache, secrets)


def test_ten_lookup_runs_send_a_wrong_password_once(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=2, rate_limit=0)
    give_wrong_password(inventory, secrets)
    cache = tmp_path / "cache"
    args = write_vars(tmp_path, "vars.yml", {"cache_dir": str(cache)})
    wrong = fleet["robot-001"]
    for run_number in range(1, RUNS + 1):
        play, failing = (LOOKUP_PLAY, True) if run_number % 2 else (WARN_PLAY, False)
        run = run_playbook(play, inventory, args=args)
        assert run.returncode == 0, run.text
        if failing:  # a failing task, ignored
            results = run.results("lookup")
            refused = results["robot-001"]
            assert refused["outcome"] == "failed" and "InvalidLoginError: " in refused["msg"], (run_number, refused)
            assert (NOT_SENT_AGAIN in refused["msg"]) is (run_number > 1), (run_number, refused["msg"])
            assert results["robot-002"]["msg"] is True
        else:  # on_error=warn: an empty token and a warning naming the error type
            assert run.results("warn")["localhost"]["msg"][0] == 0 and run.results("warn")["localhost"]["msg"][1] > 100
            warning = [line for line in run.text.splitlines() if "robots failed, and their tokens are empty" in line]
            assert warning and "InvalidLoginError" in warning[0] and NOT_SENT_AGAIN in " ".join(warning), run.text[-3000:]
        assert wrong_logins(wrong) == 1, (run_number, outcomes(wrong))
        assert_never_locked(wrong)
    assert_no_password_in_cache(cache, secrets)


def test_module_and_lookup_share_the_memory_and_a_fixed_password_is_sent(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=1, rate_limit=0)
    give_wrong_password(inventory, secrets)
    cache = tmp_path / "cache"
    args = write_vars(tmp_path, "vars.yml", {"cache_dir": str(cache)})
    robot = fleet["robot-001"]

    first = run_playbook(MODULE_PLAY, inventory, args=args)  # the module records the refusal
    assert first.returncode == 0, first.text
    assert first.results("login")["robot-001"]["error_type"] == "InvalidLoginError"
    second = run_playbook(LOOKUP_PLAY, inventory, args=args)  # the lookup, another run, reads it
    assert second.returncode == 0, second.text
    refused = second.results("lookup")["robot-001"]
    assert "InvalidLoginError: " in refused["msg"] and NOT_SENT_AGAIN in refused["msg"], refused
    assert outcomes(robot) == ["STATUS_INVALID_LOGIN"]

    set_password(inventory, "robot-001", robot.password)  # fixed: a different credential is sent at once
    fixed = run_playbook(MODULE_PLAY, inventory, args=args)
    assert fixed.returncode == 0, fixed.text
    result = fixed.results("login")["robot-001"]
    assert result["outcome"] == "ok" and result["changed"] is True and "error_type" not in result, result  # the token is hidden
    assert outcomes(robot) == ["STATUS_INVALID_LOGIN", "STATUS_OK"]
    assert [record.kind for record in robot.requests] == ["password", "password"]
    assert_never_locked(robot)
    assert_no_password_in_cache(cache, secrets)


def test_refusal_ttl_zero_sends_every_time(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=1, rate_limit=0)
    give_wrong_password(inventory, secrets)
    cache = tmp_path / "cache"
    robot = fleet["robot-001"]
    for run_number in range(1, 3):  # wrong logins below the robot's lockout (6 in a row)
        run = run_playbook(MODULE_PLAY, inventory, args=write_vars(tmp_path, "vars.yml", {"cache_dir": str(cache), "ttl": 0}))
        assert run.returncode == 0, run.text
        refused = run.results("login")["robot-001"]
        assert refused["error_type"] == "InvalidLoginError" and NOT_SENT_AGAIN not in refused["msg"], refused
        assert wrong_logins(robot) == run_number
    assert not os.path.exists(str(cache)) or refusal_records(cache, robot) == []
    # Back to the default: the next run records, the one after does not ask.
    for _run in range(2):
        run = run_playbook(MODULE_PLAY, inventory, args=write_vars(tmp_path, "vars.yml", {"cache_dir": str(cache)}))
        assert run.returncode == 0, run.text
    assert wrong_logins(robot) == 3
    assert NOT_SENT_AGAIN in run.results("login")["robot-001"]["msg"]
    assert_never_locked(robot)


def test_an_unusable_record_file_is_reported_when_the_login_is_refused(fleet_factory, run_playbook, tmp_path, secrets):
    """A record file open to others is not used, with a warning: when the login succeeds and when it is refused."""
    fleet, inventory = fleet_factory(robots=2, rate_limit=0)
    give_wrong_password(inventory, secrets)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    records = {}
    for robot in fleet:
        records[robot.name] = cache / ("%s.%s.refused" % (robot.serial, robot.username))
        records[robot.name].write_text("{}")
        os.chmod(str(records[robot.name]), 0o644)
    run = run_playbook(MODULE_PLAY, inventory, args=write_vars(tmp_path, "vars.yml", {"cache_dir": str(cache)}))
    assert run.returncode == 0, run.text
    assert run.results("login")["robot-001"]["error_type"] == "InvalidLoginError"
    assert wrong_logins(fleet["robot-001"]) == 1 and outcomes(fleet["robot-002"]) == ["STATUS_OK"]
    assert all(record.read_text() == "{}" for record in records.values())
    text = "".join(run.text.split())  # warnings may be wrapped
    assert "".join(str(records["robot-002"]).split()) in text, "no warning about the record file of robot-002 (logged in)"
    assert "".join(str(records["robot-001"]).split()) in text, "no warning about the record file of robot-001 (refused)"


# ---- spot.auth.rotate --------------------------------------------------------------------------

ROTATE = "- ansible.builtin.import_playbook: spot.auth.rotate\n"


def test_ten_rotate_runs_send_a_wrong_password_at_most_once(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=2, rate_limit=0)
    give_wrong_password(inventory, secrets)
    cache = tmp_path / "rotate-cache"
    report_path = tmp_path / "rotate.json"
    home = tmp_path / "home"
    home.mkdir()
    args = write_vars(tmp_path, "rotate-vars.yml", {"rotate_token_cache": str(cache), "rotate_report": str(report_path),
                                                    "rotate_max_fail_percentage": 100, "rotate_retries": 0})
    wrong = fleet["robot-001"]
    started = time.monotonic()
    for run_number in range(1, RUNS + 1):
        run = run_playbook(ROTATE, inventory, args=args, env={"HOME": str(home)})
        assert run.returncode == 0, (run_number, [line for line in run.text.splitlines() if "ERROR" in line or "Origin" in line])
        report = json.loads(report_path.read_text())
        entry = report["robots"]["robot-001"]
        assert (entry["outcome"], entry.get("error_type")) == ("failed", "InvalidLoginError"), (run_number, entry)
        assert report["robots"]["robot-002"]["outcome"] != "failed", (run_number, report["robots"]["robot-002"])
        assert wrong_logins(wrong) <= 1, (run_number, outcomes(wrong))
        assert_never_locked(wrong)
    assert wrong_logins(wrong) == 1
    assert time.monotonic() - started < 240
    assert_no_password_in_cache(cache, secrets)
