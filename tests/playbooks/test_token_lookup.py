# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""lookup('spot.auth.token') in real ansible-playbook runs against a simulated fleet."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

from helpers import edit_inventory, spot_hosts, strip_credentials

PER_HOST_PLAY = """
- hosts: spot
  gather_facts: false
  tasks:
    - name: token
      ansible.builtin.debug:
        msg: "{{ lookup('spot.auth.token', **(lookup_args | default({}))) | length > 100 }}"
"""


def test_every_host_gets_its_token_and_a_second_run_with_the_cache_sends_nothing(fleet_factory, run_playbook, tmp_path):
    fleet, inventory = fleet_factory(robots=6)
    cache_dir = str(tmp_path / "tokens")
    for attempt in range(2):
        run = run_playbook(PER_HOST_PLAY, inventory, args=["-e", '{"lookup_args": {"token_cache": "%s"}}' % cache_dir])
        assert run.returncode == 0, run.text
        assert {host: r["msg"] for host, r in run.results("token").items()} == {robot.name: True for robot in fleet}
        assert [robot.request_count for robot in fleet] == [1] * 6, "attempt %d" % attempt
    assert sorted(os.listdir(cache_dir)) == sorted("%s.admin.jwt" % robot.serial for robot in fleet)


def test_one_call_serves_the_whole_fleet(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=12)
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: fleet
              run_once: true
              ansible.builtin.debug:
                msg: "{{ query('spot.auth.token', *groups['spot']) | map('length') | select('gt', 100) | list | length }}"
            - name: by address
              run_once: true
              ansible.builtin.debug:
                msg: "{{ query('spot.auth.token', '127.0.0.1:' ~ hostvars['robot-002'].spot_port,
                               password=hostvars['robot-002'].spot_password) | length }}"
    """, inventory)
    assert run.returncode == 0, run.text
    assert run.results("fleet")["robot-001"]["msg"] == 12
    assert run.results("by address")["robot-001"]["msg"] == 1
    # The second task asks robot-002 by address with the same user and password: the run's session answers.
    assert [robot.request_count for robot in fleet] == [1] * 12


def test_an_entry_near_expiry_is_reminted_not_logged_in_again(fleet_factory, run_playbook, tmp_path):
    fleet, inventory = fleet_factory(robots=2)
    cache_dir = tmp_path / "tokens"
    cache_dir.mkdir(mode=0o700)
    for robot in fleet:
        entry = cache_dir / ("%s.admin.jwt" % robot.serial)
        fd = os.open(str(entry), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, robot.mint_token(lifetime=300).encode())
        os.close(fd)
    run = run_playbook(PER_HOST_PLAY, inventory, args=["-e", '{"lookup_args": {"token_cache": "%s"}}' % cache_dir])
    assert run.returncode == 0, run.text
    assert [[record.kind for record in robot.requests] for robot in fleet] == [["token"], ["token"]]


def test_credentials_from_the_sdk_environment_variables(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=2, password="Env-Only-Pass-7")
    edit_inventory(inventory, strip_credentials)
    run = run_playbook(PER_HOST_PLAY, inventory, env={"BOSDYN_CLIENT_USERNAME": "admin",
                                                      "BOSDYN_CLIENT_PASSWORD": "Env-Only-Pass-7"})
    assert run.returncode == 0, run.text
    assert [robot.requests[0].username for robot in fleet] == ["admin", "admin"]


def test_lazy_reevaluation_neither_logs_in_again_nor_resends_a_refused_password(fleet_factory, run_playbook, secrets):
    fleet, inventory = fleet_factory(robots=2)
    secrets.add("Not-The-Password-3")
    edit_inventory(inventory, lambda data: spot_hosts(data)["robot-002"].update(spot_password="Not-The-Password-3"))
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          vars:
            robot_token: "{{ lookup('spot.auth.token', errors='warn') }}"
          tasks:
            - name: use it three times
              ansible.builtin.debug:
                msg: "{{ robot_token | length > 100 }} {{ robot_token | length > 100 }} {{ robot_token | length > 100 }}"
              when: inventory_hostname == 'robot-001'
            - name: a refused password, three times
              ansible.builtin.debug:
                msg: "{{ robot_token is none }} {{ robot_token is none }} {{ robot_token is none }}"
              when: inventory_hostname == 'robot-002'
    """, inventory)
    assert run.returncode == 0, run.text
    # Each use of robot_token runs the lookup again, and each robot was asked once.
    assert run.results("use it three times")["robot-001"]["msg"] == "True True True"
    assert run.results("a refused password, three times")["robot-002"]["msg"] == "True True True"
    assert "InvalidLoginError: robot-002: 127.0.0.1:%d: the robot rejected" % fleet["robot-002"].port in run.text
    assert [robot.request_count for robot in fleet] == [1, 1]


def test_bad_option_fails_before_any_request(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=1)
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: token
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token', port=99999) }}"
    """, inventory)
    assert run.returncode == 2
    assert "InvalidOptionError: robot-001: option port: expected a whole number from 1 to 65535" in run.text
    assert fleet["robot-001"].request_count == 0
