# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A robot that writes terminal control sequences into its error texts cannot reach the user's terminal."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import sys

import grpc
import pytest
import yaml

from ansible_collections.spot.auth.plugins.module_utils import _wire
from ansible_collections.spot.auth.tests.unit.conftest import Pki, ScriptedRobot

# Clears the screen, homes the cursor, prints a fake recap, renames the terminal window, rings the bell,
# and reverses the rest of the line.
HOSTILE = "\x1b[2J\x1b[H\r\nPLAY RECAP *****\nrobot-a : ok=1 changed=0 failed=0\x1b]0;owned\x07\u202edeliated\u2028"
PASSWORD = "hostile-text-Secret-4c1d"


def header_error(request, context):
    response = _wire.messages.GetAuthTokenResponse()
    response.header.error.code = 2  # CODE_INTERNAL_SERVER_ERROR
    response.header.error.message = HOSTILE + " echo: " + request.password
    return response.SerializeToString()


def grpc_abort(request, context):
    context.abort(grpc.StatusCode.INTERNAL, HOSTILE + " echo: " + request.password)


@pytest.fixture
def hostile_robots(tmp_path, secrets):
    pki = Pki()
    robots = {"robot-a": ScriptedRobot(pki.good, [header_error]), "robot-b": ScriptedRobot(pki.good, [grpc_abort])}
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(pki.roots)
    secrets.add(PASSWORD)
    hosts = {
        name: {"ansible_host": "127.0.0.1", "spot_port": robot.port, "spot_username": "admin", "spot_password": PASSWORD,
               "spot_ca_cert": str(ca_path), "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        for name, robot in robots.items()
    }
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"spot": {"hosts": hosts}}}}))
    yield robots, inventory
    for robot in robots.values():
        robot.stop()


def test_control_sequences_from_a_robot_are_shown_escaped(hostile_robots, run_playbook):
    robots, inventory = hostile_robots
    run = run_playbook("""
        - hosts: spot
          gather_facts: false
          tasks:
            - name: module
              spot.auth.token:
                retries: 0
              ignore_errors: true
            - name: lookup
              ansible.builtin.debug:
                msg: "{{ lookup('spot.auth.token', retries=0, on_error='warn') | length }}"
    """, inventory)
    assert run.returncode == 0, run.text
    for robot in robots.values():
        assert len(robot.requests) == 2  # the module's and the lookup's: a server error is not a refusal
    for raw in ("\x1b", "\x07", "\u202e", "\u2028", "\r"):
        assert raw not in run.text
    assert len(re.findall(r"^PLAY RECAP", run.stdout, re.MULTILINE)) == 1  # only Ansible's own, on a line of its own
    assert "\\x1b[2J\\x1b[H PLAY RECAP" in run.text  # the robot's words, harmless and still readable
    failures = run.results("module")
    assert failures["robot-a"]["error_type"] == "InternalServerError" and "robot says: " in failures["robot-a"]["msg"]
    assert failures["robot-b"]["error_type"] == "RpcError" and "\\u202e" in failures["robot-b"]["msg"]
    for result in failures.values():
        assert len(result["msg"]) < 400 and "\x1b" not in result["msg"]
