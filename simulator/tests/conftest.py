# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test setup: import the simulator from this checkout even when it is not installed."""

import os
import sys

import pytest

SIMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if SIMULATOR_DIR not in sys.path:
    sys.path.insert(0, SIMULATOR_DIR)

from spot_auth_sim.testing import Fleet  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "fleet1000: starts 1000 robots in a subprocess (deselect with -m 'not fleet1000')")
    config.addinivalue_line("markers", "timeout(seconds): per-test time bound (pytest-timeout)")


@pytest.fixture
def fleet3():
    """Three healthy robots, no rate limit (tests that hammer one robot set their own)."""
    with Fleet(robots=3, rate_limit=0) as fleet:
        yield fleet
