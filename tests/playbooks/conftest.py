# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real ansible-playbook runs against simulated robots on 127.0.0.1."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys
import textwrap

import pytest

from spot_auth_sim.fleet import Fleet

from helpers import COLLECTIONS_PATH

PLAYBOOK_TIMEOUT = 240
CALLBACK_PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")


class PlayRun:
    """The outcome of one ansible-playbook run."""

    def __init__(self, completed, output_json):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.data = output_json

    @property
    def text(self):
        return self.stdout + self.stderr

    def results(self, task_name):
        """{host: result} of the task named ``task_name`` (json callback runs only)."""
        for play in self.data["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"] == task_name:
                    return task["hosts"]
        raise KeyError(task_name)


@pytest.fixture
def run_playbook(tmp_path):
    """run_playbook(playbook_yaml, inventory_path, json_output=True, args=(), env=None) -> PlayRun."""
    counter = [0]

    def run(playbook, inventory, json_output=True, args=(), env=None, check=False):
        counter[0] += 1
        path = tmp_path / ("play%d.yml" % counter[0])
        path.write_text(textwrap.dedent(playbook))
        environ = dict(os.environ)
        for name in ("BOSDYN_CLIENT_USERNAME", "BOSDYN_CLIENT_PASSWORD"):
            environ.pop(name, None)
        environ.update({
            "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
            "ANSIBLE_FORKS": "25",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        })
        if json_output:
            environ["ANSIBLE_STDOUT_CALLBACK"] = "results_json"
            environ["ANSIBLE_CALLBACK_PLUGINS"] = CALLBACK_PLUGINS
        environ.update(env or {})
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory), str(path)]
        command += list(args) + (["--check"] if check else [])
        completed = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=PLAYBOOK_TIMEOUT,
                                   cwd=str(tmp_path), check=False)
        data = None
        if json_output and completed.stdout.strip():
            data = json.loads(completed.stdout[completed.stdout.index("{"):])
        return PlayRun(completed, data)

    return run


@pytest.fixture
def fleet_factory(tmp_path):
    """fleet_factory(**Fleet kwargs) -> (fleet, inventory path); the fleet stops after the test."""
    fleets = []

    def make(**kwargs):
        fleet = Fleet(**kwargs)
        fleet.start()
        fleets.append(fleet)
        directory = tmp_path / ("fleet%d" % len(fleets))
        directory.mkdir()
        inventory = fleet.write_inventory(str(directory))
        return fleet, inventory

    yield make
    for fleet in fleets:
        fleet.stop()
