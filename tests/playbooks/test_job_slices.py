# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""spot.auth.rotate run in job slices, as AWX runs a sliced job template, and docs/awx.md's report merge.

Each slice is its own ansible-playbook run over a disjoint part of the inventory (every third robot),
writing its report under a per-job name; the merge command printed in docs/awx.md then runs as printed
(only its report glob points at this test's directory) and must give the whole fleet's outcome.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import subprocess
import sys

import pytest
from helpers import REPO_ROOT, edit_inventory, spot_hosts

pytestmark = pytest.mark.timeout(240)

ROTATE = "- ansible.builtin.import_playbook: spot.auth.rotate\n"
SLICES = 3
MERGE_BLOCK = re.compile(r"```sh\n(python3 - /shared/spot-auth/rotate-\*\.json <<'MERGE'\n.*?\nMERGE)\n```", re.S)


def merge_command():
    with open(os.path.join(REPO_ROOT, "docs", "awx.md")) as handle:
        found = MERGE_BLOCK.search(handle.read())
    assert found, "docs/awx.md no longer shows the report merge this test runs"
    return found.group(1)


def test_slices_report_their_own_robots_and_the_documented_merge_gives_the_fleet(fleet_factory, run_playbook, tmp_path):
    fleet, inventory = fleet_factory(robots=9)
    edit_inventory(inventory, lambda data: spot_hosts(data)["robot-005"].update(spot_password="not-the-password"))
    robots = [robot.name for robot in fleet]
    shared = tmp_path / "shared"
    home = tmp_path / "home"
    home.mkdir()

    for number in range(SLICES):
        hosts = robots[number::SLICES]
        run = run_playbook(ROTATE, inventory, env={"HOME": str(home)}, args=[
            "--limit", ",".join(hosts),
            "-e", "rotate_report=%s/rotate-%d.json" % (shared, 100 + number),
            "-e", "rotate_max_fail_percentage=50"])
        assert run.returncode == 0, run.text
        report = json.loads((shared / ("rotate-%d.json" % (100 + number))).read_text())
        # A slice's report and summary cover only its own robots.
        assert sorted(report["robots"]) == sorted(hosts)
        assert report["robots_total"] == len(hosts)
        assert report["robots_failed"] == (1 if "robot-005" in hosts else 0)

    script = merge_command().replace("/shared/spot-auth/", str(shared) + "/")
    merged = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False,
                            env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]))
    assert merged.returncode == 0, merged.stderr
    fleet_view = json.loads(merged.stdout)
    assert fleet_view["robots_total"] == 9 and fleet_view["robots_failed"] == 1
    assert fleet_view["failed"] == [["robot-005", "InvalidLoginError"]]
    assert sum(fleet_view["counts"].values()) == 9 and fleet_view["counts"]["failed"] == 1
