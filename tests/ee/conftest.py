# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the execution-environment tests: the image (built beforehand), ansible-navigator, fleets.

The image is never built here: scripts/test.sh runs scripts/build_ee.sh in the step before. A missing
image, podman or ansible-navigator fails the tests, with what to run.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import pytest

from ee_helpers import BUILD_HINT, IMAGE, NAVIGATOR, NAVIGATOR_CONFIG, Secrets, podman, run

from spot_auth_sim.testing import SubprocessFleet

FLEET_START_TIMEOUT = 60
FLEET_STOP_TIMEOUT = 10


@pytest.fixture(scope="session")
def image():
    """The image's name; the tests fail at once when Podman's store does not have it."""
    completed = run([podman(), "image", "exists", IMAGE], timeout=60)
    if completed.returncode != 0:
        pytest.fail("the image %s is not in Podman's store: %s\n%s" % (IMAGE, BUILD_HINT, completed.stderr))
    return IMAGE


@pytest.fixture(scope="session")
def navigator(image):
    """ansible-navigator next to this Python (requirements-dev.txt installs it), ready to run."""
    if not os.access(NAVIGATOR, os.X_OK):
        pytest.fail("%s is missing: pip install -r requirements-dev.txt (bash scripts/setup.sh)" % NAVIGATOR)
    if not os.path.isfile(NAVIGATOR_CONFIG):
        pytest.fail("%s is missing: the tests run ansible-navigator with the checkout's settings" % NAVIGATOR_CONFIG)
    if not os.path.isdir("/dev/mqueue"):
        pytest.fail("ansible-navigator needs a /dev/mqueue directory (mkdir /dev/mqueue as root)")
    return NAVIGATOR


@pytest.fixture
def secrets():
    """{name: value} of what no output may hold; the fleets add their robots' passwords."""
    return Secrets()


@pytest.fixture
def fleet_factory(tmp_path, secrets):
    """fleet_factory(name, robots, args) -> a running SubprocessFleet on 127.0.0.1; stopped after the test."""
    fleets = []

    def make(name, robots=8, args=()):
        out_dir = tmp_path / name
        out_dir.mkdir()
        fleet = SubprocessFleet(robots=robots, args=list(args), out_dir=str(out_dir),
                                start_timeout=FLEET_START_TIMEOUT, stop_timeout=FLEET_STOP_TIMEOUT)
        fleet.start()
        fleets.append(fleet)
        for robot in fleet.robots:
            assert robot.host == "127.0.0.1"
            secrets["password of %s (%s)" % (robot.name, name)] = robot.password
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop()
