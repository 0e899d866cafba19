# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""spot.auth.rotate run on a schedule: a staged password change, output a person reads, one output directory.

Real ansible-playbook runs (at -vvvv, searched for secrets by the run_playbook fixture) against simulated
fleets on 127.0.0.1; every claim of the summary and the report is checked against the robots' own records.
HOME points at a temporary directory in every run, so the role's defaults never touch the real home.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import stat

import pytest
import yaml
from helpers import edit_inventory, forget_requests, sent, strip_credentials

from spot_auth_sim.control import ControlClient

pytestmark = pytest.mark.timeout(240)

ROTATE = "- ansible.builtin.import_playbook: spot.auth.rotate\n"
NEW_PASSWORD = "Staged-Pass-3f81c"
ROBOTS = 20
CHANGED = ["robot-%03d" % n for n in range(1, ROBOTS + 1, 2)]  # the administrator has done every other robot
NOT_YET = ["robot-%03d" % n for n in range(2, ROBOTS + 1, 2)]
TASK_HEADER = re.compile(r"^TASK \[(?P<name>.*)\] \**$")


def home_env(tmp_path):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home)}, home / ".cache" / "spot-auth"


def vars_file(tmp_path, name, data):
    """Extra variables in a file, so that secrets never appear on the command line (-vvvv prints it)."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return ["-e", "@%s" % path]


def entry_path(cache, robot):
    return cache / ("%s.%s.jwt" % (robot.serial, robot.username))


def seed(cache, robot):
    """A valid token from the current password in the cache, as an earlier scheduled run would have left it."""
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = robot.mint_token()
    path = entry_path(cache, robot)
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def read(path):
    with open(str(path)) as handle:
        return handle.read().strip()


def refusals(robot):
    return sum(1 for record in robot.requests if record.outcome == "STATUS_INVALID_LOGIN")


def summary(run):
    """The summary task's lines, as the callbacks saw them."""
    for play in run.data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1] == "Show the summary":
                (result,) = task["hosts"].values()
                return result["msg"]
    raise AssertionError("no summary")


def task_headers(text):
    return [match.group("name") for match in map(TASK_HEADER.match, text.splitlines()) if match]


def test_a_staged_password_change_across_twenty_robots(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=ROBOTS, control=True)
    env, output_dir = home_env(tmp_path)
    cache = output_dir / "tokens"
    seeded = {robot.name: seed(cache, robot) for robot in fleet}
    control = ControlClient.from_dir(fleet.out_dir)
    for name in CHANGED:
        control.set_password(name, "admin", NEW_PASSWORD)
    secrets.update([NEW_PASSWORD, *seeded.values()])
    forget_requests(fleet)
    args = vars_file(tmp_path, "new.yml", {"rotate_new_password": NEW_PASSWORD})

    # Two scheduled runs while the change is under way: the same outcome, and never a lockout.
    verified = {}
    for attempt in (1, 2):
        run = run_playbook(ROTATE, inventory, args=args, env=env)
        assert run.returncode == 0, run.text

        report = json.loads((output_dir / "rotate-report.json").read_text())
        assert report["counts"] == {"verified": 10, "still_old": 10, "failed": 0}, attempt
        # Every robot took one of the two passwords: no robot shows as skipped in any task.
        assert [line for line in run.stdout.splitlines() if line.startswith("skipping:")] == [], attempt
        assert report["still_old"] == NOT_YET and report["attention"] == [] and report["passed"] is True
        assert {name: result["outcome"] for name, result in report["robots"].items()} == dict(
            [(name, "verified") for name in CHANGED] + [(name, "still_old") for name in NOT_YET])

        lines = summary(run)
        assert lines[0].startswith("spot.auth.rotate: 20 robots: 10 verified, 10 still on the old password, 0 failed")
        header = lines.index(next(line for line in lines if line.startswith("still on the old password (10;")))
        assert ", ".join(lines[header + 1:header + 3]).replace(" ", "").split(",") == NOT_YET
        assert "token cache: %s" % cache in lines and "report: %s" % (output_dir / "rotate-report.json") in lines

        # What the robots saw, run by run: at most one refusal each, and no lockout building up.
        for name in CHANGED:
            robot = fleet[name]
            # The new password, once: the login proves it, and its token replaces the cache entry.
            assert sent(robot) == ["password:STATUS_OK"], (attempt, name)
            stored = read(entry_path(cache, robot))
            assert stored not in (seeded[name], verified.get(name)), name
            verified[name] = stored
        for name in NOT_YET:
            robot = fleet[name]
            # The new password refused once, then the current password accepted once; the cache left alone.
            # On the next run the refusal is remembered in the cache directory: the new password is not sent again.
            expected = ["password:STATUS_INVALID_LOGIN", "password:STATUS_OK"] if attempt == 1 else ["password:STATUS_OK"]
            assert sent(robot) == expected, (attempt, name)
            assert control.lockout(name, "admin")["locked"] is False
            assert read(entry_path(cache, robot)) == seeded[name], name
        assert all(refusals(robot) <= 1 for robot in fleet)
        forget_requests(fleet)

    # A token cached for a robot still on the old password still re-mints: a plain refresh needs no password.
    run = run_playbook(ROTATE, inventory, env=env)
    assert run.returncode == 0, run.text
    report = json.loads((output_dir / "rotate-report.json").read_text())
    assert report["counts"] == {"refreshed": 20, "relogged_in": 0, "kept": 0, "failed": 0}
    assert all(sent(robot) == ["token:STATUS_OK"] for robot in fleet)


def test_a_plain_refresh_prints_no_skipped_task_and_ends_with_the_summary(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=ROBOTS)
    env, output_dir = home_env(tmp_path)
    home = output_dir.parent.parent

    run = run_playbook(ROTATE, inventory, env=env)

    assert run.returncode == 0, run.text
    # No skipped task, for any robot (the run is made at -vvvv, where a skipped task shows as 'skipping: [...] =>').
    assert [line for line in run.stdout.splitlines() if line.startswith("skipping:")] == []
    # The summary is the last task the run shows, and what it prints is followed only by the recap.
    assert task_headers(run.stdout)[-1] == "spot.auth.rotate : Show the summary"
    after = run.stdout.split("TASK [spot.auth.rotate : Show the summary]", 1)[1]
    shown, recap = after.split("PLAY RECAP", 1)
    lines = summary(run)
    assert all(json.dumps(line) in shown for line in lines)
    assert lines[0] == ("spot.auth.rotate: 20 robots: 0 refreshed, 20 re-logged-in, 0 kept, 0 failed "
                        "(0.0 % of the fleet; the play fails above 0.0 %: passed)")

    # The defaults: one directory, ~/.cache/spot-auth, with the token cache and the report, both shown.
    assert lines[-2:] == ["token cache: %s" % (output_dir / "tokens"), "report: %s" % (output_dir / "rotate-report.json")]
    assert os.listdir(str(home / ".cache")) == ["spot-auth"]
    assert sorted(os.listdir(str(output_dir))) == ["rotate-report.json", "tokens"]
    assert stat.S_IMODE(os.stat(str(output_dir)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(str(output_dir / "rotate-report.json")).st_mode) == 0o600
    assert sorted(os.listdir(str(output_dir / "tokens"))) == sorted("%s.admin.jwt" % robot.serial for robot in fleet)
    report = json.loads((output_dir / "rotate-report.json").read_text())
    assert report["token_cache"] == str(output_dir / "tokens") and report["report"] == str(output_dir / "rotate-report.json")
    assert not (tmp_path / "spot-rotate-report.json").exists()  # nothing in the working directory any more


def test_without_a_known_current_password_a_refusal_is_a_failure(fleet_factory, run_playbook, tmp_path, secrets):
    fleet, inventory = fleet_factory(robots=3)
    edit_inventory(inventory, strip_credentials)  # no spot_password, and no BOSDYN_CLIENT_PASSWORD either
    fleet["robot-001"].set_password("admin", NEW_PASSWORD)
    secrets.add(NEW_PASSWORD)
    forget_requests(fleet)
    env, output_dir = home_env(tmp_path)
    env["BOSDYN_CLIENT_USERNAME"] = "admin"
    args = vars_file(tmp_path, "new.yml", {"rotate_new_password": NEW_PASSWORD, "rotate_max_fail_percentage": 100})

    run = run_playbook(ROTATE, inventory, args=args, env=env)

    assert run.returncode == 0, run.text
    report = json.loads((output_dir / "rotate-report.json").read_text())
    assert report["counts"] == {"verified": 1, "still_old": 0, "failed": 2} and report["still_old"] == []
    assert [(item["robot"], item["error_type"], item["step"]) for item in report["attention"]] == [
        ("robot-002", "InvalidLoginError", "verify"), ("robot-003", "InvalidLoginError", "verify")]
    # Nothing but the new password, once: with no current password there is nothing else to try.
    assert [sent(robot) for robot in fleet][1:] == [["password:STATUS_INVALID_LOGIN"]] * 2
