# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run's session in real ansible-playbook runs: one wrong login per robot, user and password, and reuse.

Every handshake of one run goes through one session agent, whatever evaluates it: forks, play vars
evaluated again on each use, loop items, lookups in several tasks, roles. Each test counts what the
simulated robots recorded: a wrong password is sent exactly once, and the account is never locked.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
import yaml
from helpers import edit_inventory, outcomes, spot_hosts, write_vars

pytestmark = pytest.mark.timeout(120)

WRONG_PASSWORD = "Wrong-Pass-7c4a1"
NOT_SENT_AGAIN = "not sent again in this run"


def give_wrong_password(inventory, secrets, *names):
    """Give ``names`` a wrong spot_password in the inventory (never on the command line: -vvvv prints it)."""
    secrets.add(WRONG_PASSWORD)

    def configure(data):
        for name in names:
            spot_hosts(data)[name]["spot_password"] = WRONG_PASSWORD

    edit_inventory(inventory, configure)


def assert_one_wrong_login(robot):
    """The robot saw exactly one wrong login, and its user was never locked."""
    seen = outcomes(robot)
    assert seen.count("STATUS_INVALID_LOGIN") == 1, (robot.name, seen)
    assert "STATUS_TEMPORARILY_LOCKED_OUT" not in seen, (robot.name, seen)
    assert [record.username for record in robot.requests if record.kind == "password"] == [robot.username], robot.name
    assert robot.lockout_status(robot.username) == {"failures": 1, "locked": False, "seconds_left": 0.0}, robot.name


def test_forks_every_host_evaluates_a_refused_lookup_and_the_robot_sees_one_login(fleet_factory, run_playbook, secrets):
    fleet, inventory = fleet_factory(robots=21, rate_limit=0)
    give_wrong_password(inventory, secrets, "robot-001")
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: the refused robot, from every host
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token', 'robot-001') }}"
              ignore_errors: true
            - name: own token
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token') | length > 100 }}"
              ignore_errors: true
    """, inventory, args=["-f", "20"])
    assert run.returncode == 0, run.text
    refused = run.results("the refused robot, from every host")
    assert sorted(refused) == [robot.name for robot in fleet]
    for host, result in refused.items():
        assert result["outcome"] == "failed", host
        assert "InvalidLoginError: robot-001: 127.0.0.1:%d" % fleet["robot-001"].port in result["msg"], host
    own = run.results("own token")
    robot_one = own.pop("robot-001")
    assert robot_one["outcome"] == "failed" and "InvalidLoginError: " in robot_one["msg"] and NOT_SENT_AGAIN in robot_one["msg"]
    assert {host: result["msg"] for host, result in own.items()} == {robot.name: True for robot in list(fleet)[1:]}
    assert_one_wrong_login(fleet["robot-001"])
    assert [robot.request_count for robot in fleet] == [1] * 21


def test_play_vars_used_by_ten_tasks_send_a_refused_password_once(fleet_factory, run_playbook, secrets):
    fleet, inventory = fleet_factory(robots=2, rate_limit=0)
    give_wrong_password(inventory, secrets, "robot-001")
    tasks = "".join("""
            - name: use %d
              ansible.builtin.debug:
                msg: "{{ robot_token | length > 100 }}"
              ignore_errors: true
""" % number for number in range(1, 11))
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          vars:
            robot_token: "{{ lookup('spot.auth.token') }}"
          tasks:
%s""" % tasks, inventory)
    assert run.returncode == 0, run.text
    refused = [run.results("use %d" % number)["robot-001"] for number in range(1, 11)]
    assert [result["outcome"] for result in refused] == ["failed"] * 10
    assert all("InvalidLoginError: robot-001: 127.0.0.1:%d" % fleet["robot-001"].port in r["msg"] for r in refused)
    assert NOT_SENT_AGAIN not in refused[0]["msg"]
    assert all(NOT_SENT_AGAIN in result["msg"] for result in refused[1:])
    assert [run.results("use %d" % number)["robot-002"]["msg"] for number in range(1, 11)] == [True] * 10
    assert_one_wrong_login(fleet["robot-001"])
    # The good robot logged in once, and the nine other uses were served by the session.
    assert [robot.request_count for robot in fleet] == [1, 1]
    assert outcomes(fleet["robot-002"]) == ["STATUS_OK"]


def test_a_looped_module_task_sends_a_refused_password_once(fleet_factory, run_playbook, secrets):
    fleet, inventory = fleet_factory(robots=1, rate_limit=0)
    give_wrong_password(inventory, secrets, "robot-001")
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: login
              spot.auth.token:
              loop: "{{ range(8) | list }}"
              register: login
              ignore_errors: true
            - name: error types
              ansible.builtin.debug:
                msg: "{{ login.results | map(attribute='error_type') | list }}"
    """, inventory)
    assert run.returncode == 0, run.text
    items = run.results("login")["robot-001"]["results"]
    assert len(items) == 8
    assert [item["error_type"] for item in items] == ["InvalidLoginError"] * 8
    assert all(item["failed"] and item["status"] == "STATUS_INVALID_LOGIN" for item in items)
    assert NOT_SENT_AGAIN not in items[0]["msg"]
    assert [NOT_SENT_AGAIN in item["msg"] for item in items[1:]] == [True] * 7
    assert run.results("error types")["robot-001"]["msg"] == ["InvalidLoginError"] * 8
    assert_one_wrong_login(fleet["robot-001"])
    assert fleet["robot-001"].request_count == 1


def test_lookups_in_several_tasks_send_a_refused_password_once(fleet_factory, run_playbook, secrets):
    fleet, inventory = fleet_factory(robots=3, rate_limit=0)
    give_wrong_password(inventory, secrets, "robot-001")
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: the whole fleet at once
              run_once: true
              ansible.builtin.debug:
                msg: "{{ query('spot.auth.token', *groups['spot'], on_error='skip') | map('length') | list }}"
            - name: each host its own
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token') | length > 100 }}"
              ignore_errors: true
            - name: by name, with a warning
              run_once: true
              ansible.builtin.set_fact:
                robot_one_token: "{{ lookup('spot.auth.token', 'robot-001', on_error='warn') }}"
            - name: by address, with the same password
              run_once: true
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token', '127.0.0.1:' ~ hostvars['robot-001'].spot_port,
                                password=hostvars['robot-001'].spot_password) }}"
              ignore_errors: true
            - name: what the warning left
              run_once: true
              ansible.builtin.debug:
                msg: "{{ robot_one_token == '' }}"
    """, inventory)
    assert run.returncode == 0, run.text
    lengths = run.results("the whole fleet at once")["robot-001"]["msg"]
    assert lengths[0] == 0 and all(length > 100 for length in lengths[1:]), lengths
    own = run.results("each host its own")
    assert own["robot-001"]["outcome"] == "failed" and NOT_SENT_AGAIN in own["robot-001"]["msg"]
    assert "InvalidLoginError: " in own["robot-001"]["msg"]
    assert own["robot-002"]["msg"] is True and own["robot-003"]["msg"] is True
    warning = "spot.auth.token: 1 of 1 robots failed, and their tokens are empty: InvalidLoginError: robot-001: 127.0.0.1:%d" % (
        fleet["robot-001"].port)
    assert run.text.count(warning) == 1, run.text
    by_address = run.results("by address, with the same password")["robot-001"]
    assert by_address["outcome"] == "failed"
    assert "InvalidLoginError: 127.0.0.1:%d" % fleet["robot-001"].port in by_address["msg"]
    assert NOT_SENT_AGAIN in by_address["msg"]
    assert run.results("what the warning left")["robot-001"]["msg"] is True
    assert_one_wrong_login(fleet["robot-001"])
    # Each good robot logged in once, for the first task; the second task's lookups were served by the session.
    assert [robot.request_count for robot in fleet] == [1, 1, 1]


def test_a_role_a_tiny_role_and_a_lookup_send_a_refused_password_once(fleet_factory, run_playbook, secrets, tmp_path):
    fleet, inventory = fleet_factory(robots=3, rate_limit=0)
    give_wrong_password(inventory, secrets, "robot-001")
    role = tmp_path / "roles" / "robot_token" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text("""\
- name: Get this robot's token in a role
  ansible.builtin.set_fact:
    role_token_length: "{{ lookup('spot.auth.token', on_error='skip') | length }}"
""")
    args = write_vars(tmp_path, "vars.yml", {"rotate_token_cache": str(tmp_path / "cache"),
                                             "rotate_report": str(tmp_path / "rotate.json"),
                                             "rotate_max_fail_percentage": 100})
    run = run_playbook("""
        - ansible.builtin.import_playbook: spot.auth.rotate

        - hosts: spot
          gather_facts: false
          roles:
            - robot_token
          tasks:
            - name: after the roles
              ansible.builtin.debug:
                msg: "{{ role_token_length | int }} {{ lookup('spot.auth.token', 'robot-001', on_error='skip') | length }}"
            - name: the module once more
              spot.auth.token:
              ignore_errors: true
              register: again
            - name: how
              ansible.builtin.debug:
                msg: "{{ again.error_type | default(spot_auth.method) }}"
    """, inventory, args=args)
    assert run.returncode == 0, run.text
    with open(str(tmp_path / "rotate.json")) as handle:
        report = yaml.safe_load(handle)
    assert {name: (r["outcome"], r.get("error_type")) for name, r in report["robots"].items()} == {
        "robot-001": ("failed", "InvalidLoginError"), "robot-002": ("relogged_in", None), "robot-003": ("relogged_in", None)}
    after = run.results("after the roles")
    assert after["robot-001"]["msg"] == "0 0"
    for name in ("robot-002", "robot-003"):
        length, robot_one = after[name]["msg"].split()
        assert int(length) > 100 and robot_one == "0", name
    again = run.results("the module once more")["robot-001"]
    assert again["outcome"] == "failed" and again["error_type"] == "InvalidLoginError" and NOT_SENT_AGAIN in again["msg"]
    assert {host: r["msg"] for host, r in run.results("how").items()} == {
        "robot-001": "InvalidLoginError", "robot-002": "session", "robot-003": "session"}
    assert_one_wrong_login(fleet["robot-001"])
    # The role logged the good robots in; the lookups and the module after it were served by the session.
    assert [robot.request_count for robot in fleet] == [1, 1, 1]


@pytest.mark.parametrize("module_first", [True, False], ids=["module-then-lookup", "lookup-then-module"])
def test_a_token_from_the_run_serves_the_module_and_the_lookup(fleet_factory, run_playbook, module_first):
    fleet, inventory = fleet_factory(robots=4)
    lookup_task = """
            - name: lookup
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token') | length > 100 }}"
"""
    module_task = """
            - name: login
              spot.auth.token:
"""
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
%s%s
            - name: compare
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token') == spot_auth.token }} {{ spot_auth.method }}"
    """ % ((module_task, lookup_task) if module_first else (lookup_task, module_task)), inventory)
    assert run.returncode == 0, run.text
    assert {host: r["msg"] for host, r in run.results("lookup").items()} == {robot.name: True for robot in fleet}
    assert sorted(run.results("login")) == [robot.name for robot in fleet]
    method = "password" if module_first else "session"
    assert {host: r["msg"] for host, r in run.results("compare").items()} == {robot.name: "True %s" % method for robot in fleet}
    # One password login per robot, whichever came first.
    assert [robot.request_count for robot in fleet] == [1] * 4
    assert [[(r.kind, r.outcome) for r in robot.requests] for robot in fleet] == [[("password", "STATUS_OK")]] * 4


@pytest.mark.parametrize("on_error", ["warn", "skip", None])
def test_on_error_returns_the_tokens_that_answered(fleet_factory, run_playbook, on_error):
    fleet, inventory = fleet_factory(robots=4, faults={"robot-003": "down"})
    options = "retries=0" + (", on_error='%s'" % on_error if on_error else "")
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: fleet
              run_once: true
              ansible.builtin.debug:
                msg: "{{ query('spot.auth.token', *groups['spot'], %s) | map('length') | list }}"
              ignore_errors: true
    """ % options, inventory)
    result = run.results("fleet")["robot-001"]
    warning = "spot.auth.token: 1 of 4 robots failed, and their tokens are empty: "
    failure = "UnableToConnectToRobotError: robot-003: 127.0.0.1:%d" % fleet["robot-003"].port
    assert run.returncode == 0, run.text
    if on_error is None:  # the default: fail
        assert result["outcome"] == "failed" and failure in result["msg"], result
        assert warning not in run.text
    else:
        assert result["outcome"] == "ok", result
        lengths = result["msg"]
        assert lengths[2] == 0 and all(length > 100 for length in lengths[:2] + lengths[3:]), lengths
        assert run.text.count(warning) == (1 if on_error == "warn" else 0), run.text
        if on_error == "warn":
            assert run.text.count(warning + failure) == 1, run.text
    assert [robot.request_count for robot in fleet] == [1, 1, 0, 1]


def test_session_off_still_gets_tokens_and_a_call_never_repeats_a_refused_password(fleet_factory, run_playbook, secrets):
    fleet, inventory = fleet_factory(robots=3, rate_limit=0)
    give_wrong_password(inventory, secrets, "robot-001")
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: duplicated terms
              run_once: true
              ansible.builtin.debug:
                msg: "{{ query('spot.auth.token', 'robot-001', 'robot-002', 'robot-001', 'robot-002', 'robot-001',
                               on_error='skip') | map('length') | list }}"
            - name: login
              spot.auth.token:
                session: false
              when: inventory_hostname == 'robot-003'
            - name: how
              ansible.builtin.debug:
                msg: "{{ spot_auth.method }} {{ spot_auth.token | length > 100 }}"
              when: inventory_hostname == 'robot-003'
    """, inventory, env={"SPOT_AUTH_SESSION": "false"})
    assert run.returncode == 0, run.text
    lengths = run.results("duplicated terms")["robot-001"]["msg"]
    assert [length > 100 for length in lengths] == [False, True, False, True, False] and lengths[0] == 0, lengths
    assert run.results("how")["robot-003"]["msg"] == "password True"
    assert "session agent is unavailable" not in run.text
    assert_one_wrong_login(fleet["robot-001"])
    assert [robot.request_count for robot in fleet] == [1, 1, 1]
