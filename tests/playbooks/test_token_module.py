# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""spot.auth.token in real ansible-playbook runs against a simulated fleet over TLS."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import subprocess
import sys

import pytest
from helpers import edit_inventory, login_play, spot_hosts, strip_credentials

from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient
from ansible_collections.spot.auth.plugins.module_utils._errors import SpotAuthError

WRONG_PASSWORD = "Wrong-Pass-0d6e3"

LOGIN_PLAY = """
- name: Authenticate the fleet
  hosts: spot
  gather_facts: false
  tasks:
    - name: login
      spot.auth.token:
        timeout: 2
        retries: 3
      register: login
      failed_when: false

    - name: remint
      spot.auth.token:
        token: "{{ spot_auth.token }}"
        username: "{{ spot_auth.username }}"
      register: remint
      when: login.error_type is not defined

    - name: summary
      ansible.builtin.debug:
        msg:
          error_type: "{{ login.error_type | default(None) }}"
          retryable: "{{ login.retryable | default(None) }}"
          status: "{{ login.status | default(None) }}"
          grpc_code: "{{ login.grpc_code | default(None) }}"
          login_changed: "{{ login.changed }}"
          has_fact: "{{ spot_auth is defined }}"
          method: "{{ spot_auth.method | default(None) }}"
          expires_at: "{{ spot_auth.expires_at | default(None) }}"
          fact_is_the_registered_token: "{{ spot_auth is defined and login.spot_auth is defined and spot_auth.token == remint.spot_auth.token }}"
          reminted: "{{ remint is changed }}"
"""

FAULTY = {
    "robot-003": "down", "robot-004": "slow", "robot-005": "ratelimited", "robot-006": "flaky:2",
    "robot-007": "internal", "robot-008": "unknown", "robot-009": "wrong-ca", "robot-010": "wrong-name",
    "robot-011": "unavailable",
}
EXPECTED = {
    "robot-001": None, "robot-002": None,
    "robot-003": "UnableToConnectToRobotError", "robot-004": "TimedOutError",
    "robot-005": "TooManyRequestsError", "robot-006": None, "robot-007": "InternalServerError",
    "robot-008": "UnsetStatusError", "robot-009": "CertificateVerificationError",
    "robot-010": "NonexistentAuthorityError", "robot-011": "UnableToConnectToRobotError",
    "robot-012": "InvalidLoginError", "robot-013": "TemporarilyLockedOutError",
    "robot-014": None, "robot-015": "InvalidApplicationTokenError", "robot-016": "ExpiredApplicationTokenError",
}


def lock_out(robot, ca_pem):
    """Send six wrong passwords, as a careless script would, so the robot locks the user."""
    # Retries ride out the rate limit; refused logins themselves are never retried.
    with AuthClient("127.0.0.1", robot.port, root_certificates=ca_pem, retries=6, timeout=5) as client:
        for _attempt in range(6):
            with pytest.raises(SpotAuthError):
                client.auth(robot.username, "careless-guess")


@pytest.fixture
def mixed_fleet(fleet_factory, secrets):
    secrets.add(WRONG_PASSWORD)
    fleet, inventory = fleet_factory(robots=16, faults=FAULTY, legacy=("robot-014", "robot-015", "robot-016"),
                                     slow_seconds=4)

    def configure(data):
        hosts = spot_hosts(data)
        hosts["robot-012"]["spot_password"] = WRONG_PASSWORD
        del hosts["robot-015"]["spot_app_token"]
        hosts["robot-016"]["spot_app_token"] = fleet.expired_app_token

    edit_inventory(inventory, configure)
    lock_out(fleet["robot-013"], fleet.ca_pem)
    return fleet, inventory


def test_fleet_play_gives_every_robot_its_fact_or_its_error_type(mixed_fleet, run_playbook):
    fleet, inventory = mixed_fleet
    before = {robot.name: robot.request_count for robot in fleet}
    run = run_playbook(LOGIN_PLAY, inventory)
    assert run.returncode == 0, run.text
    summary = {host: result["msg"] for host, result in run.results("summary").items()}
    assert {host: s["error_type"] for host, s in summary.items()} == EXPECTED
    for host, expected in EXPECTED.items():
        outcome = summary[host]
        if expected is None:
            # The re-mint replaced the fact of the login.
            assert outcome["has_fact"] and outcome["method"] == "token" and outcome["reminted"], host
            assert outcome["expires_at"].endswith("Z") and outcome["fact_is_the_registered_token"], host
            assert outcome["login_changed"] is True
        else:
            assert not outcome["has_fact"], host
    # Transient failures were retried (retries: 3 means 4 attempts), refusals were not.
    sent = {robot.name: robot.request_count - before[robot.name] for robot in fleet}
    assert sent["robot-006"] == 3 + 1  # flaky:2 answers on the third attempt, then the re-mint
    assert sent["robot-005"] == 4 and sent["robot-011"] == 4
    assert summary["robot-005"]["retryable"] is True
    assert sent["robot-012"] == 1, "a wrong password must be sent exactly once"
    assert sent["robot-013"] == 1
    assert summary["robot-012"]["status"] == "STATUS_INVALID_LOGIN"
    assert summary["robot-009"]["grpc_code"] == "UNAVAILABLE" and summary["robot-009"]["status"] is None


def test_remint_sends_the_token_not_the_password(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=2)
    run = run_playbook(LOGIN_PLAY, inventory)
    assert run.returncode == 0, run.text
    for robot in fleet:
        assert [record.kind for record in robot.requests] == ["password", "token"]
        assert all(record.disable_rpc_logging for record in robot.requests)
        assert robot.requests[0].client_name.startswith("spot.auth/0.1.0@")


def test_a_failed_robot_fails_its_task_with_structured_fields(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=2, faults={"robot-002": "down"})
    run = run_playbook(login_play("{retries: 0}"), inventory)
    assert run.returncode == 2
    results = run.results("login")
    failed = results["robot-002"]
    assert failed["outcome"] == "failed" and failed["error_type"] == "UnableToConnectToRobotError"
    assert failed["hostname"] == "127.0.0.1" and failed["grpc_code"] == "UNAVAILABLE"
    assert "refused" in failed["msg"] and str(fleet["robot-002"].port) in failed["msg"]
    assert results["robot-001"]["changed"] is True and "censored" in results["robot-001"]


def test_output_at_vvvv_and_the_jsonfile_fact_cache_hold_no_secret(mixed_fleet, run_playbook, tmp_path):
    fleet, inventory = mixed_fleet
    cache = tmp_path / "facts"
    token_dir = tmp_path / "tokens"
    token_dir.mkdir()
    play = LOGIN_PLAY + """
    - name: Keep the tokens for the test to search for
      ansible.builtin.copy:
        content: "{{ item.token }}"
        dest: "%s/{{ inventory_hostname }}-{{ item.method }}"
        mode: "0600"
      loop: "{{ [login.spot_auth, spot_auth] if spot_auth is defined else [] }}"
      no_log: true

    - name: Put something in the fact cache, to show it is in use
      ansible.builtin.set_fact:
        cache_marker: "cached-{{ inventory_hostname }}"
        cacheable: true
""" % token_dir
    run = run_playbook(play, inventory, env={
        "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache),
        "ANSIBLE_GATHERING": "smart",
    })
    assert run.returncode == 0, run.text[-3000:]
    tokens = [open(path).read() for path in glob.glob(str(token_dir / "*"))]
    assert len(tokens) == 2 * 4  # login and re-mint on the four robots that answer
    secrets = tokens + [robot.password for robot in fleet] + [WRONG_PASSWORD, fleet.app_token, fleet.expired_app_token]
    assert "TimedOutError" in run.text and "ESTABLISH LOCAL CONNECTION" in run.text  # -vvvv really ran
    cached = "".join(open(path).read() for path in glob.glob(str(cache / "*")))
    assert "cached-robot-001" in cached, "the fact cache is in use"
    for secret in secrets:
        assert secret not in run.text
        assert secret not in cached


def test_module_defaults_group_sets_options_for_a_play(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=2)
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          module_defaults:
            group/spot.auth.spot:
              client_name: from-module-defaults
              retries: 0
          tasks:
            - name: login
              spot.auth.token:
    """, inventory)
    assert run.returncode == 0, run.text
    assert {robot.requests[0].client_name for robot in fleet} == {"from-module-defaults"}


def test_credentials_fall_back_to_the_sdk_environment_variables(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=2, password="Shared-Env-Pass-1")
    edit_inventory(inventory, strip_credentials)
    play = login_play()
    without = run_playbook(play, inventory)
    assert without.returncode == 2
    assert {r["error_type"] for r in without.results("login").values()} == {"InvalidOptionError"}
    assert "BOSDYN_CLIENT_PASSWORD" in without.results("login")["robot-001"]["msg"]
    assert sum(robot.request_count for robot in fleet) == 0
    run = run_playbook(play, inventory, env={"BOSDYN_CLIENT_USERNAME": "admin", "BOSDYN_CLIENT_PASSWORD": "Shared-Env-Pass-1"})
    assert run.returncode == 0, run.text
    assert [robot.requests[0].username for robot in fleet] == ["admin", "admin"]


@pytest.mark.parametrize("args, option", [
    ("{port: 70000}", "port"),
    ("{port: twelve}", "port"),
    ("{timeout: -1}", "timeout"),
    ("{retries: 99}", "retries"),
    ("{hostname: 'bad host name'}", "hostname"),
    ("{authority: ''}", "authority"),
    ("{password: secret-a, token: secret-b}", "token"),
    ("{ca_cert: /nonexistent/ca.pem}", "ca_cert"),
    ("{bogus: 1}", "bogus"),
])
def test_bad_options_fail_before_any_network_call(fleet_factory, run_playbook, args, option):
    fleet, inventory = fleet_factory(robots=1)
    run = run_playbook(login_play(args), inventory)
    result = run.results("login")["robot-001"]
    assert run.returncode == 2 and result["error_type"] == "InvalidOptionError", result
    assert result["msg"].startswith("option %s: " % option)
    assert fleet["robot-001"].request_count == 0
    assert fleet["robot-001"].password not in run.text


def test_check_mode_contacts_no_robot(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=2)
    run = run_playbook(login_play(), inventory, check=True)
    assert run.returncode == 0, run.text
    result = run.results("login")["robot-001"]
    assert result["changed"] is True and "would get a token" in result["msg"]
    assert sum(robot.request_count for robot in fleet) == 0


def test_validate_certs_false_warns_and_reaches_an_untrusted_robot(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=1, faults={"robot-001": "wrong-ca"})
    run = run_playbook(login_play("{validate_certs: false}"), inventory)
    assert run.returncode == 0, run.text
    assert "validate_certs is false" in run.text
    assert fleet["robot-001"].requests[0].kind == "password"


@pytest.fixture
def python_without_grpc(tmp_path):
    venv = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    return str(venv / "bin" / "python")


def test_delegate_to_a_gateway_ships_the_module_there(fleet_factory, run_playbook, python_without_grpc):
    fleet, inventory = fleet_factory(robots=2)

    def add_gateways(data):
        data["all"]["children"]["gateways"] = {"hosts": {
            "gateway": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
            "bare-gateway": {"ansible_connection": "local", "ansible_python_interpreter": python_without_grpc},
        }}

    edit_inventory(inventory, add_gateways)
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: login
              spot.auth.token:
              delegate_to: gateway
            - name: fact
              ansible.builtin.debug:
                msg: "{{ spot_auth.method }} {{ spot_auth.port }} {{ (spot_auth.token | length) > 20 }}"
            - name: bare
              spot.auth.token:
              delegate_to: bare-gateway
              ignore_errors: true
    """, inventory)
    assert run.returncode == 0, run.text
    facts = run.results("fact")
    assert facts["robot-001"]["msg"] == "password %d True" % fleet["robot-001"].port
    assert "censored" in run.results("login")["robot-001"]
    bare = run.results("bare")["robot-002"]
    assert bare["outcome"] == "failed" and "grpcio" in bare["msg"] and bare["error_type"] == "MissingRequiredLibraryError"
    assert all(robot.request_count == 1 for robot in fleet)
