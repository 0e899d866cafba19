# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A play on the controller against the same play inside the execution environment, side by side.

    .venv/bin/python benchmarks/ee_benchmark.py [--robots 50] [--rounds 5]

Needs the image of scripts/build_ee.sh. Runs a simulated fleet in a subprocess (lockout off, so the
demo's deliberate wrong password does not change later rounds) and alternates, round by round:
H the demo play with this checkout's ansible-playbook; N the same play through ansible-navigator in
the image, as on Automation Platform; P the same play with plain `podman run` of the image; and
T `podman run IMAGE true`, the container's own start and stop. Prints medians and ratios.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import yaml
from spot_auth_sim.testing import SubprocessFleet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
PODMAN_OPTIONS = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
TIMEOUT = 600


def image_name():
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        return "localhost/spot-auth-ee:%s" % yaml.safe_load(handle)["version"]


def timed(command, **kwargs):
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit("failed (rc %d): %s\n%s" % (completed.returncode, " ".join(command), completed.stderr[-2000:]))
    return elapsed


def variants(image, fleet_dir):
    inventory = os.path.join(fleet_dir, "inventory.yml")
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "BOSDYN_"))}
    environ.update(PATH=BIN + os.pathsep + environ.get("PATH", ""), ANSIBLE_HOME=os.path.join(ROOT, "build", "ansible-home"))
    podman = ["podman", "run", "--rm"] + PODMAN_OPTIONS
    in_container = ["--network", "host", "--user", "root", "-v", "%s:%s:ro" % (fleet_dir, fleet_dir),
                    "-v", "%s:/runner/project:ro" % os.path.join(ROOT, "playbooks"), image]
    return {
        "H controller": lambda: timed([os.path.join(BIN, "ansible-playbook"), "-i", inventory, "playbooks/demo.yml"],
                                      cwd=ROOT, env=environ),
        "N navigator": lambda: timed([os.path.join(BIN, "ansible-navigator"), "run", "playbooks/demo.yml", "-i", inventory,
                                      "--eei", image, "--mode", "stdout"], cwd=ROOT, env=environ),
        "P podman run": lambda: timed(podman + in_container + ["ansible-playbook", "-i", inventory,
                                                               "/runner/project/demo.yml"], env=environ),
        "T container only": lambda: timed(podman + [image, "true"], env=environ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    image = image_name()
    if subprocess.run(["podman", "image", "exists", image], check=False).returncode != 0:
        sys.exit("no image %s: bash scripts/build_ee.sh builds it" % image)

    args = ["--rate-limit", "0", "--lockout-threshold", "0"]
    with SubprocessFleet(robots=options.robots, args=args) as fleet:
        runs = variants(image, fleet.out_dir)
        timings = {name: [] for name in runs}
        for _round in range(options.rounds):
            for name, run in runs.items():
                timings[name].append(run())
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print("demo play, %d robots, medians of %d alternating rounds" % (options.robots, options.rounds))
    for name, value in medians.items():
        print("  %-18s %7.2f s" % (name, value))
    controller = medians["H controller"]
    in_image = medians["P podman run"]
    print("  N/H %.2f   P/H %.2f   (P - T)/H %.2f" % (
        medians["N navigator"] / controller, in_image / controller, (in_image - medians["T container only"]) / controller))


if __name__ == "__main__":
    main()
