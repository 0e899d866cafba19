# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A 100-robot fleet with every fault mode: nothing hangs, nothing is lost, every failure is typed."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import math
import time

from helpers import edit_inventory, spot_hosts

from ansible_collections.spot.auth.plugins.module_utils._client import worst_case_seconds

TIMEOUT, RETRIES, FORKS = 3, 2, 50  # robot-020 is slow for 30 s: still a timeout, with room for TLS on a busy box
# Ten faulty robots out of 100, one per fault mode, and one with a wrong password.
FAULTS = {
    "robot-010": "down", "robot-020": "slow", "robot-030": "internal", "robot-040": "unknown",
    "robot-050": "unavailable", "robot-060": "flaky:5", "robot-070": "wrong-ca", "robot-080": "wrong-name",
    "robot-090": "ratelimited",
}
EXPECTED_FAILURES = {
    "robot-010": "UnableToConnectToRobotError", "robot-020": "TimedOutError", "robot-030": "InternalServerError",
    "robot-040": "UnsetStatusError", "robot-050": "UnableToConnectToRobotError",
    "robot-060": "UnableToConnectToRobotError", "robot-070": "CertificateVerificationError",
    "robot-080": "NonexistentAuthorityError", "robot-090": "TooManyRequestsError", "robot-100": "InvalidLoginError",
}


def test_hundred_robots_with_every_fault_mode_finish_within_the_bound(fleet_factory, run_playbook, secrets):
    fleet, inventory = fleet_factory(robots=100, faults=FAULTS, slow_seconds=30)
    secrets.add("wrong-for-robot-100")
    edit_inventory(inventory, lambda data: spot_hosts(data)["robot-100"].update(spot_password="wrong-for-robot-100"))
    started = time.monotonic()
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: login
              spot.auth.token:
                timeout: %d
                retries: %d
              register: login
              failed_when: false
            - name: outcome
              ansible.builtin.debug:
                msg: "{{ login.error_type if login.error_type is defined else 'token %%s' %% (spot_auth.token | length > 100) }}"
    """ % (TIMEOUT, RETRIES), inventory, env={"ANSIBLE_FORKS": str(FORKS)})
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.text[-2000:]
    outcomes = {host: result["msg"] for host, result in run.results("outcome").items()}
    assert len(outcomes) == 100
    for host, outcome in outcomes.items():
        assert outcome == EXPECTED_FAILURES.get(host, "token True"), host
    # The documented bound: ceil(hosts / forks) waves of the per-robot worst case, plus Ansible's own time.
    bound = math.ceil(100 / FORKS) * worst_case_seconds(TIMEOUT, RETRIES)
    ansible_overhead = 60
    assert elapsed < bound + ansible_overhead, (elapsed, bound)
    assert fleet["robot-100"].request_count == 1
    assert fleet["robot-020"].request_count == RETRIES + 1 and fleet["robot-060"].request_count == RETRIES + 1
