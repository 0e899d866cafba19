# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A simulated fleet of Spot robots that answer the auth handshake (GetAuthToken) over TLS."""

__version__ = "0.1.0"

from .fleet import Fleet, FleetConfigError, FleetRuntime, build_spec, load_fleet_file, spec_from_mapping  # noqa: E402
from .robot import FAULTS, AuthSettings, ManualClock, SimRobot, SystemClock, parse_fault  # noqa: E402

__all__ = [
    "FAULTS",
    "AuthSettings",
    "Fleet",
    "FleetConfigError",
    "FleetRuntime",
    "ManualClock",
    "SimRobot",
    "SystemClock",
    "__version__",
    "build_spec",
    "load_fleet_file",
    "parse_fault",
    "spec_from_mapping",
]
