# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""spot.auth.token as a module and as a lookup: one option parser, so the same values are accepted and refused.

Each value of the table is written as YAML once for the module task and once for the lookup (through a task
variable, so the lookup sees the same YAML value), in one ansible-playbook run per group of options. Refused
values run on robot-001, which must never receive a request; accepted values run on robot-002 and must log in.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import time

import pytest
from helpers import edit_inventory, spot_hosts, strip_credentials

from ansible.parsing.vault import VaultLib, VaultSecret

OK = "accepted"
VAULT_PASSWORD = "Vault-Pass-For-Option-Tests-5"
# Plaintexts of vault values: no run may print them.
VAULTED = ("Vaulted-In-List-7c1", "Vaulted-In-Dict-2e9", "Vaulted-Token-4b8", "Vaulted-App-Token-9f3")
# Written in clear in the playbooks (Ansible may quote the playbook's lines), never in a message about them.
CLEAR_SECRETS = ("Clear-In-List-3d5", "Clear-Dict-Value-8a2", "73519846", "2718.2818", "42424242")
QUOTE_HINT = "quote it in YAML"

LOOKUP_FAILURE = re.compile(r"The lookup plugin 'spot\.auth\.token' failed: (.*)$", re.DOTALL)
OPTION_MESSAGE = re.compile(r"^option (\w+): ")


def vault(plaintext):
    """A vault-encrypted YAML scalar, on one line so that it fits in a flow sequence or mapping."""
    ciphertext = VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))]).encrypt(plaintext).decode()
    return '!vault "%s"' % ciphertext.strip().replace("\n", "\\n")


# (option, YAML value, verdict, text both messages must contain). A verdict is OK or the option the error names.
# PORT, CA_PATH and ROBOT_PASSWORD stand for the accepting robot's port, the fleet's CA file and its password.
NUMBERS = [
    ("port", "null", OK, None),
    ("port", "PORT", OK, None),
    ("port", '"PORT"', OK, None),
    ("port", "true", "port", "got True"),
    ("port", "false", "port", None),
    ("port", "0", "port", None),
    ("port", "65536", "port", None),
    ("port", "-1", "port", None),
    ("port", "443.0", "port", None),
    ("port", '"4x3"', "port", None),
    ("port", '""', "port", None),
    ("port", "[443]", "port", None),
    ("port", "{number: 443}", "port", None),
    ("timeout", "null", OK, None),
    ("timeout", "5", OK, None),
    ("timeout", "2.5", OK, None),
    ("timeout", '"3"', OK, None),
    ("timeout", "0", "timeout", None),
    ("timeout", "-1", "timeout", None),
    ("timeout", "601", "timeout", None),
    ("timeout", ".inf", "timeout", None),
    ("timeout", '"nan"', "timeout", None),
    ("timeout", "true", "timeout", None),
    ("timeout", "fast", "timeout", None),
    ("timeout", "[5]", "timeout", None),
    ("timeout", "{seconds: 5}", "timeout", None),
    ("retries", "null", OK, None),
    ("retries", "0", OK, None),
    ("retries", "2", OK, None),
    ("retries", '"1"', OK, None),
    ("retries", "11", "retries", None),
    ("retries", "-1", "retries", None),
    ("retries", "true", "retries", None),
    ("retries", "1.0", "retries", None),
    ("retries", "two", "retries", None),
    ("retries", "[1]", "retries", None),
    ("retries", "{}", "retries", None),
    ("token_cache_margin", "null", OK, None),
    ("token_cache_margin", "0", OK, None),
    ("token_cache_margin", "600", OK, None),
    ("token_cache_margin", '"60"', OK, None),
    ("token_cache_margin", "43201", "token_cache_margin", None),
    ("token_cache_margin", "-5", "token_cache_margin", None),
    ("token_cache_margin", "false", "token_cache_margin", None),
    ("token_cache_margin", "1.5", "token_cache_margin", None),
    ("token_cache_margin", "[60]", "token_cache_margin", None),
]
BOOLEANS = [
    ("validate_certs", "null", OK, None),
    ("validate_certs", "true", OK, None),
    ("validate_certs", "false", OK, None),
    ("validate_certs", "yes", OK, None),
    ("validate_certs", '"no"', OK, None),
    ("validate_certs", '"True"', OK, None),
    ("validate_certs", "1", OK, None),
    ("validate_certs", "0", OK, None),
    ("validate_certs", "ture", "validate_certs", "'ture'"),
    ("validate_certs", '"flase"', "validate_certs", "'flase'"),
    ("validate_certs", "2", "validate_certs", None),
    ("validate_certs", "0.5", "validate_certs", None),
    ("validate_certs", '""', "validate_certs", None),
    ("validate_certs", "[true]", "validate_certs", None),
    ("validate_certs", "{on: true}", "validate_certs", None),
    ("session", "null", OK, None),
    ("session", "true", OK, None),
    ("session", "false", OK, None),
    ("session", '"off"', OK, None),
    ("session", "ture", "session", "'ture'"),
    ("session", "2", "session", None),
    ("session", "[false]", "session", None),
    ("session", "{}", "session", None),
]
ADDRESSES = [
    ("hostname", "null", OK, None),
    ("hostname", "127.0.0.1", OK, None),
    ("hostname", '"127.0.0.1:443"', "hostname", "without a port"),
    ("hostname", '"127.0.0.1:PORT"', "hostname", "without a port"),
    ("hostname", '"[::1]:443"', "hostname", "without a port"),
    ("hostname", '"[::1"', "hostname", None),
    ("hostname", '"[::1]]"', "hostname", None),
    ("hostname", '"[zz::1]"', "hostname", None),
    ("hostname", '"::1]"', "hostname", None),
    ("hostname", "256.0.0.1", "hostname", None),
    ("hostname", '"bad host"', "hostname", None),
    ("hostname", '""', "hostname", None),
    ("hostname", "true", "hostname", None),
    ("hostname", "127", "hostname", QUOTE_HINT),
    ("hostname", "127.1", "hostname", QUOTE_HINT),
    ("hostname", "[127.0.0.1]", "hostname", None),
    ("hostname", "{host: 127.0.0.1}", "hostname", None),
    ("authority", "null", OK, None),
    ("authority", "auth.spot.robot", OK, None),
    ("authority", '"auth.spot.robot:443"', "authority", "without a port"),
    ("authority", '"[::1"', "authority", None),
    ("authority", '""', "authority", None),
    ("authority", "true", "authority", None),
    ("authority", "5", "authority", QUOTE_HINT),
    ("authority", "[auth.spot.robot]", "authority", None),
]
STRINGS = [
    ("username", "null", OK, None),
    ("username", "admin", OK, None),
    ("username", "12345", "username", QUOTE_HINT),
    ("username", "1.5", "username", QUOTE_HINT),
    ("username", "true", "username", None),
    ("username", '""', "username", None),
    ("username", "[admin]", "username", None),
    ("username", "{name: admin}", "username", None),
    ("password", "null", OK, None),
    ("password", "ROBOT_PASSWORD", OK, None),
    ("password", "73519846", "password", QUOTE_HINT),
    ("password", "2718.2818", "password", QUOTE_HINT),
    ("password", "true", "password", "a value of type bool"),
    ("password", '""', "password", None),
    ("password", "[%s, Clear-In-List-3d5]" % vault(VAULTED[0]), "password", "a value of type list"),
    ("password", "{first: %s, second: Clear-Dict-Value-8a2}" % vault(VAULTED[1]), "password", "a value of type dict"),
    ("token", "null", OK, None),
    ("token", "42424242", "token", QUOTE_HINT),
    ("token", "false", "token", "a value of type bool"),
    ("token", "[%s]" % vault(VAULTED[2]), "token", "a value of type list"),
    ("token", "{jwt: x}", "token", "a value of type dict"),
    ("app_token", "null", OK, None),
    ("app_token", "99", "app_token", QUOTE_HINT),
    ("app_token", "true", "app_token", "a value of type bool"),
    ("app_token", "[%s]" % vault(VAULTED[3]), "app_token", "a value of type list"),
    ("app_token", "{}", "app_token", "a value of type dict"),
    ("serial", "null", OK, None),
    ("serial", "SN-0002", OK, None),
    ("serial", "20002", OK, None),
    ("serial", "true", "serial", None),
    ("serial", "1.5", "serial", QUOTE_HINT),
    ("serial", "[SN-0002]", "serial", None),
    ("serial", "{}", "serial", None),
    ("client_name", "null", OK, None),
    ("client_name", "inventory-audit", OK, None),
    ("client_name", "7", "client_name", QUOTE_HINT),
    ("client_name", "true", "client_name", None),
    ("client_name", '"bad\\x01name"', "client_name", "control characters"),
    ("client_name", "[audit]", "client_name", None),
    ("ca_cert", "null", OK, None),
    ("ca_cert", "CA_PATH", OK, None),
    ("ca_cert", "true", "ca_cert", None),
    ("ca_cert", "5", "ca_cert", QUOTE_HINT),
    ("ca_cert", "[CA_PATH]", "ca_cert", None),
    ("ca_cert", "/nonexistent/ca.pem", "ca_cert", "cannot be read"),
    ("token_cache", "true", "token_cache", None),
    ("token_cache", "[/tmp]", "token_cache", None),
]
TABLES = {"numbers": NUMBERS, "booleans": BOOLEANS, "addresses": ADDRESSES, "strings": STRINGS}

CASE_TASKS = """
    - name: module {index}
      spot.auth.token:
        {option}: {value}
      ignore_errors: true
    - name: lookup {index}
      ansible.builtin.debug:
        msg: "{{{{ lookup('spot.auth.token', {option}=value) | length > 100 }}}}"
      vars:
        value: {value}
      ignore_errors: true
"""


def table_playbook(cases, substitutions):
    """Two plays: refused values on robot-001, accepted values on robot-002; tasks 'module N' and 'lookup N'."""
    plays = {"robot-001": [], "robot-002": []}
    for index, (option, value, verdict, _text) in enumerate(cases):
        for placeholder, replacement in substitutions.items():
            value = value.replace(placeholder, replacement)
        host = "robot-002" if verdict == OK else "robot-001"
        plays[host].append(CASE_TASKS.format(index=index, option=option, value=value))
    return "".join("""
- name: values for %s
  hosts: %s
  gather_facts: false
  tasks:
%s""" % (host, host, "".join(tasks)) for host, tasks in plays.items() if tasks)


def module_verdict(result):
    """(verdict, message): OK, the option an InvalidOptionError names, or a description of another outcome."""
    message = result.get("msg") or ""
    if result.get("outcome") == "ok":
        return OK, None
    option = OPTION_MESSAGE.match(message)
    if result.get("error_type") == "InvalidOptionError" and option:
        return option.group(1), message
    return "%s %s: %s" % (result.get("outcome"), result.get("error_type"), message[:300]), message


def lookup_verdict(result, host):
    """(verdict, message) of a lookup task; the message without the lookup's 'InvalidOptionError: host: ' prefix."""
    message = result.get("msg")
    if result.get("outcome") == "ok":
        return (OK, None) if message is True else ("no token: %r" % (message,), None)
    failure = LOOKUP_FAILURE.search(str(message))
    text = failure.group(1) if failure else str(message)
    for prefix in ("InvalidOptionError: %s: " % host, "InvalidOptionError: "):
        if text.startswith(prefix) and OPTION_MESSAGE.match(text[len(prefix):]):
            return OPTION_MESSAGE.match(text[len(prefix):]).group(1), text[len(prefix):]
    return "failed: %s" % text[:300], text


def vault_args(tmp_path):
    path = tmp_path / "vault-password"
    path.write_text(VAULT_PASSWORD + "\n")
    return ["--vault-password-file", str(path)]


@pytest.fixture
def option_secrets(secrets):
    secrets.update(VAULTED)
    secrets.add(VAULT_PASSWORD)
    return secrets


@pytest.mark.parametrize("group", sorted(TABLES))
def test_module_and_lookup_accept_and_refuse_the_same_values(fleet_factory, run_playbook, option_secrets, tmp_path, group):
    cases = TABLES[group]
    fleet, inventory = fleet_factory(robots=2)
    accepting = fleet["robot-002"]
    substitutions = {"ROBOT_PASSWORD": vault(accepting.password), "PORT": str(accepting.port), "CA_PATH": fleet.ca_path}
    run = run_playbook(table_playbook(cases, substitutions), inventory, args=vault_args(tmp_path))
    assert run.data is not None, run.text[-3000:]
    problems = []
    for index, (option, value, verdict, text) in enumerate(cases):
        host = "robot-002" if verdict == OK else "robot-001"
        case = "%s: %s" % (option, value[:60])
        by_module, module_message = module_verdict(run.results("module %d" % index)[host])
        by_lookup, lookup_message = lookup_verdict(run.results("lookup %d" % index)[host], host)
        if (by_module, by_lookup) != (verdict, verdict):
            problems.append("%s: expected %s, module: %s, lookup: %s" % (case, verdict, by_module, by_lookup))
            continue
        if verdict == OK:
            continue
        if module_message != lookup_message:
            problems.append("%s: the messages differ: module %r, lookup %r" % (case, module_message, lookup_message))
        for message in (module_message, lookup_message):
            if text and text not in message:
                problems.append("%s: %r lacks %r" % (case, message, text))
            if any(secret in message for secret in CLEAR_SECRETS):
                problems.append("%s: a secret's value is in %r" % (case, message))
    if fleet["robot-001"].request_count:
        problems.append("refused values reached the robot: %d requests" % fleet["robot-001"].request_count)
    assert not problems, "\n".join(problems)


def test_a_misspelt_boolean_is_refused_wherever_it_is_written(fleet_factory, run_playbook, secrets):
    """validate_certs 'ture' as an argument and as a host variable, a boolean port and a numeric password in the
    inventory, SPOT_AUTH_SESSION=ture, a misspelt keyword: each refused by both front ends, naming the option."""
    secrets.add("31415926")
    fleet, inventory = fleet_factory(robots=5)

    def configure(data):
        hosts = spot_hosts(data)
        hosts["robot-002"]["spot_validate_certs"] = "ture"
        hosts["robot-003"]["spot_port"] = True
        hosts["robot-004"]["spot_password"] = 31415926

    edit_inventory(inventory, configure)
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: module argument
              spot.auth.token:
                validate_certs: ture
              when: inventory_hostname == 'robot-001'
              ignore_errors: true
            - name: lookup argument
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token', validate_certs='ture') | length > 100 }}"
              when: inventory_hostname == 'robot-001'
              ignore_errors: true
            - name: lookup misspelt keyword
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token', pasword='x') | length > 100 }}"
              when: inventory_hostname == 'robot-001'
              ignore_errors: true
            - name: lookup another host
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token', 'robot-002') | length > 100 }}"
              when: inventory_hostname == 'robot-001'
              ignore_errors: true
            - name: module
              spot.auth.token:
              when: inventory_hostname != 'robot-001'
              ignore_errors: true
            - name: lookup
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token') | length > 100 }}"
              when: inventory_hostname != 'robot-001'
              ignore_errors: true
    """, inventory, env={"SPOT_AUTH_SESSION": "ture"})
    assert run.data is not None, run.text[-3000:]
    expected = {"robot-002": "validate_certs", "robot-003": "port", "robot-004": "password", "robot-005": "session"}
    module = {host: module_verdict(result) for host, result in run.results("module").items() if result["outcome"] != "skipped"}
    lookup = {host: lookup_verdict(result, host) for host, result in run.results("lookup").items() if result["outcome"] != "skipped"}
    assert {host: verdict for host, (verdict, _message) in module.items()} == expected
    assert {host: verdict for host, (verdict, _message) in lookup.items()} == expected
    assert {host: message for host, (_verdict, message) in module.items()} == {host: message for host, (_verdict, message) in lookup.items()}
    assert "'ture'" in module["robot-002"][1] and "'ture'" in module["robot-005"][1]
    assert QUOTE_HINT in module["robot-004"][1]
    assert module_verdict(run.results("module argument")["robot-001"])[0] == "validate_certs"
    assert lookup_verdict(run.results("lookup argument")["robot-001"], "robot-001")[0] == "validate_certs"
    misspelt = lookup_verdict(run.results("lookup misspelt keyword")["robot-001"], "robot-001")
    assert misspelt[0] == "pasword" and "unsupported option" in misspelt[1]
    assert lookup_verdict(run.results("lookup another host")["robot-001"], "robot-002")[0] == "validate_certs"
    assert [robot.request_count for robot in fleet] == [0] * 5


def test_a_misspelt_boolean_in_ansible_cfg_is_refused_and_a_task_argument_overrides_it(fleet_factory, run_playbook, tmp_path):
    fleet, inventory = fleet_factory(robots=2)
    config = tmp_path / "ansible.cfg"
    config.write_text("[spot_auth]\nvalidate_certs = ture\n")
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: module
              spot.auth.token:
              when: inventory_hostname == 'robot-001'
              ignore_errors: true
            - name: lookup
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token') | length > 100 }}"
              when: inventory_hostname == 'robot-001'
              ignore_errors: true
            - name: module with validate_certs
              spot.auth.token:
                validate_certs: true
              when: inventory_hostname == 'robot-002'
            - name: lookup with validate_certs
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token', validate_certs=true) | length > 100 }}"
              when: inventory_hostname == 'robot-002'
    """, inventory, env={"ANSIBLE_CONFIG": str(config)})
    assert run.data is not None, run.text[-3000:]
    assert "config file = %s" % config in run.text
    module = module_verdict(run.results("module")["robot-001"])
    lookup = lookup_verdict(run.results("lookup")["robot-001"], "robot-001")
    assert module[0] == lookup[0] == "validate_certs"
    assert module[1] == lookup[1] and "'ture'" in module[1]
    assert module_verdict(run.results("module with validate_certs")["robot-002"])[0] == OK
    assert lookup_verdict(run.results("lookup with validate_certs")["robot-002"], "robot-002")[0] == OK
    assert fleet["robot-001"].request_count == 0
    assert fleet["robot-002"].request_count >= 1


UNDIALLABLE = [
    ("hostname", '"127.0.0.1:443"'),
    ("hostname", '"127.0.0.1:PORT"'),
    ("hostname", '"[::1"'),
    ("hostname", '"[::1]]"'),
    ("hostname", '"[zz::1]"'),
    ("port", "true"),
]
PATIENT_TASKS = """
    - name: module {index}
      spot.auth.token:
        {option}: {value}
        retries: 10
        timeout: 30
      ignore_errors: true
    - name: lookup {index}
      ansible.builtin.debug:
        msg: "{{{{ lookup('spot.auth.token', {option}=value, retries=10, timeout=30) | length > 100 }}}}"
      vars:
        value: {value}
      ignore_errors: true
"""


def test_an_address_the_robot_cannot_have_is_never_dialled(fleet_factory, run_playbook):
    """Refused before any connection: with 10 retries and a 30 s timeout, six cases dialled would take minutes."""
    fleet, inventory = fleet_factory(robots=1)
    port = str(fleet["robot-001"].port)
    tasks = "".join(PATIENT_TASKS.format(index=index, option=option, value=value.replace("PORT", port))
                    for index, (option, value) in enumerate(UNDIALLABLE))
    started = time.monotonic()
    run = run_playbook("""
- hosts: spot
  gather_facts: false
  tasks:
%s""" % tasks, inventory)
    elapsed = time.monotonic() - started
    assert run.data is not None, run.text[-3000:]
    for index, (option, value) in enumerate(UNDIALLABLE):
        module = run.results("module %d" % index)["robot-001"]
        lookup = lookup_verdict(run.results("lookup %d" % index)["robot-001"], "robot-001")
        assert module.get("error_type") == "InvalidOptionError", (value, module)
        assert module_verdict(module)[0] == lookup[0] == option, (value, module, lookup)
        assert module["msg"] == lookup[1], value
    assert "UnableToConnectToRobotError" not in run.text
    assert fleet["robot-001"].request_count == 0
    assert elapsed < 60, "%.1f s: was a connection attempted?" % elapsed


def test_ansible_cfg_and_the_environment_reach_the_module_as_they_reach_the_lookup(fleet_factory, run_playbook, tmp_path):
    fleet, inventory = fleet_factory(robots=1, password="Env-Only-Pass-6d2")
    robot = fleet["robot-001"]

    def configure(data):
        strip_credentials(data)
        del spot_hosts(data)["robot-001"]["spot_port"]

    edit_inventory(inventory, configure)
    config = tmp_path / "ansible.cfg"
    config.write_text("[spot_auth]\nport = %d\nclient_name = from-ansible-cfg\ntimeout = 5\nretries = 1\nsession = false\n" % robot.port)
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: module
              spot.auth.token:
            - name: lookup
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token') | length > 100 }}"
    """, inventory, env={"ANSIBLE_CONFIG": str(config), "BOSDYN_CLIENT_USERNAME": "admin", "BOSDYN_CLIENT_PASSWORD": "Env-Only-Pass-6d2"})
    assert run.returncode == 0, run.text[-3000:]
    assert run.results("module")["robot-001"]["changed"] is True
    assert run.results("lookup")["robot-001"]["msg"] is True
    # session = false: each front end made its own handshake, with the port and client name of ansible.cfg.
    assert [(record.kind, record.username, record.client_name) for record in robot.requests] == [("password", "admin", "from-ansible-cfg")] * 2
