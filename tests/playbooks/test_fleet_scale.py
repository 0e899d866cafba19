# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One lookup over a fleet larger than the usual open-file limit allows at once."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

pytestmark = pytest.mark.timeout(600)

ROBOTS = 2000
# The soft and hard limit of a common login shell: no raising possible, so the session has to pace itself.
FILE_LIMIT = 1024

FLEET_PLAY = """
- hosts: robot-0001
  gather_facts: false
  tasks:
    - name: fleet
      ansible.builtin.debug:
        msg: "{{ query('spot.auth.token', *groups['spot']) | select('match', '^eyJ') | list | length }}"
"""


def test_a_lookup_over_2000_robots_under_ulimit_1024_gets_every_token_with_one_login_each(fleet_factory, run_playbook):
    fleet, inventory = fleet_factory(robots=ROBOTS, rate_limit=0)
    run = run_playbook(FLEET_PLAY, inventory, file_limit=FILE_LIMIT)
    assert run.returncode == 0, run.text[-3000:]
    assert run.results("fleet")["robot-0001"]["msg"] == ROBOTS
    counts = [robot.request_count for robot in fleet]
    assert counts == [1] * ROBOTS, "robots asked other than once: %s" % sorted(set(counts))
    assert "Too many open files" not in run.text
