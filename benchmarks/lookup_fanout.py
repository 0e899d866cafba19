# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One spot.auth.token lookup with N terms against N sequential handshakes, side by side.

    .venv/bin/python benchmarks/lookup_fanout.py [--robots 100] [--rounds 5] [--latency-ms 0 50]

Runs a simulated fleet in a subprocess (so it does not share this process's CPU time slices with
the client), alternates the variants round by round and prints medians and their ratio.
"""

import argparse
import os
import statistics
import time

from ansible.plugins.loader import init_plugin_loader, lookup_loader
from spot_auth_sim.testing import SubprocessFleet

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "collections")
init_plugin_loader([COLLECTIONS])

from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient  # noqa: E402
from ansible_collections.spot.auth.plugins.plugin_utils import _session  # noqa: E402

PASSWORD = "Benchmark-Pass-1"


def lookup_all(fleet, ca_path):
    lookup = lookup_loader.get("spot.auth.token")
    terms = ["127.0.0.1:%d" % robot.port for robot in fleet.robots]
    # In this process (session=False), so that the fan-out itself is measured, not a socket round trip.
    tokens = lookup.run(terms, variables={}, username="admin", password=PASSWORD, ca_cert=ca_path, retries=0, session=False)
    assert len(tokens) == len(terms)


def sequential(fleet, ca_pem):
    for robot in fleet.robots:
        with AuthClient("127.0.0.1", robot.port, root_certificates=ca_pem, retries=0) as client:
            client.auth("admin", PASSWORD)


def measure(robots, rounds, latency_ms):
    args = ["--rate-limit", "0", "--latency-ms", str(latency_ms), "--password", PASSWORD]
    with SubprocessFleet(robots=robots, args=args) as fleet:
        ca_pem = fleet.ca_pem
        timings = {"lookup": [], "sequential": []}
        for _round in range(rounds):
            # The process's session remembers tokens: start a new one so every round really authenticates.
            _session._PROCESS_SESSION.clear()
            started = time.perf_counter()
            lookup_all(fleet, fleet.ca_path)
            timings["lookup"].append(time.perf_counter() - started)
            started = time.perf_counter()
            sequential(fleet, ca_pem)
            timings["sequential"].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in timings.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0, 50])
    args = parser.parse_args()
    print("%-12s %8s %14s %14s %8s" % ("latency", "robots", "lookup (s)", "sequential (s)", "ratio"))
    for latency in args.latency_ms:
        medians = measure(args.robots, args.rounds, latency)
        ratio = medians["sequential"] / medians["lookup"]
        print("%-12s %8d %14.3f %14.3f %7.1fx" % ("%g ms" % latency, args.robots, medians["lookup"], medians["sequential"], ratio))


if __name__ == "__main__":
    main()
