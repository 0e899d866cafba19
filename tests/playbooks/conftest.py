# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real ansible-playbook runs against simulated robots on 127.0.0.1.

Every run is made at -vvvv, and its output and results are searched for the passwords of the
simulated robots, for secrets a test adds, and for anything shaped like a JWT: a test fails when a
secret shows up, whatever it was testing.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import resource
import subprocess
import sys
import textwrap

import pytest

from spot_auth_sim.fleet import Fleet
from spot_auth_sim.testing import JWT_SHAPE

from helpers import playbook_environment

PLAYBOOK_TIMEOUT = 240


class PlayRun:
    """The outcome of one ansible-playbook run."""

    def __init__(self, completed, results):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.data = results

    @property
    def text(self):
        return self.stdout + self.stderr

    def results(self, task_name):
        """{host: result} of the task named ``task_name``, as callbacks saw it."""
        for play in self.data["plays"]:
            for task in play["tasks"]:
                if task["task"]["name"] == task_name:
                    return task["hosts"]
        raise KeyError(task_name)


@pytest.fixture
def secrets():
    """Strings no playbook run of the test may print; fleet_factory adds the robots' passwords."""
    return set()


@pytest.fixture
def run_playbook(tmp_path, secrets):
    """run_playbook(playbook_yaml, inventory_path, args=(), env=None, check=False, file_limit=None) -> PlayRun.

    ``file_limit`` sets ansible-playbook's open-file limit, soft and hard, as ``ulimit -n`` does in a shell.
    """
    counter = [0]

    def run(playbook, inventory, args=(), env=None, check=False, file_limit=None):
        counter[0] += 1
        path = tmp_path / ("play%d.yml" % counter[0])
        path.write_text(textwrap.dedent(playbook))
        results = tmp_path / ("results%d.json" % counter[0])
        environ = playbook_environment(tmp_path, results, env)
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-vvvv", "-i", str(inventory), str(path)]
        command += list(args) + (["--check"] if check else [])
        limit = None if file_limit is None else (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (file_limit, file_limit)))
        completed = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=PLAYBOOK_TIMEOUT,
                                   cwd=str(tmp_path), check=False, preexec_fn=limit)
        data = json.loads(results.read_text()) if results.exists() else None
        play_run = PlayRun(completed, data)
        assert_no_secret(play_run.text + (results.read_text() if results.exists() else ""), secrets)
        return play_run

    return run


def assert_no_secret(text, secrets):
    for secret in secrets:
        assert secret not in text, "a secret appears in the output"
    leaked = JWT_SHAPE.search(text)
    assert leaked is None, "a token appears in the output: %s..." % leaked.group(0)[:20]


@pytest.fixture
def fleet_factory(tmp_path, secrets):
    """fleet_factory(**Fleet kwargs) -> (fleet, inventory path); the fleet stops after the test."""
    fleets = []

    def make(**kwargs):
        fleet = Fleet(**kwargs)
        fleet.start()
        fleets.append(fleet)
        secrets.update(robot.password for robot in fleet)
        secrets.update(token for token in (fleet.app_token, fleet.expired_app_token) if token)
        directory = tmp_path / ("fleet%d" % len(fleets))
        directory.mkdir()
        inventory = fleet.write_inventory(str(directory))
        return fleet, inventory

    yield make
    for fleet in fleets:
        fleet.stop()
