# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet benchmark: spot.auth against Ansible's own floor, the raw wire and bosdyn-client, side by side.

    .venv/bin/python benchmarks/fleet_benchmark.py                 # 50, 200 and 500 robots, 3 rounds, 0 and 50 ms
    .venv/bin/python benchmarks/fleet_benchmark.py --quick         # smoke run: 10 and 40 robots, 1 round
    .venv/bin/python benchmarks/fleet_benchmark.py --robots 200 --rounds 5 --latency-ms 0 --json out.json

Variants (benchmarks/README.md explains them and the table):

    A  ansible-playbook, one spot.auth.token task on every robot (forks 50)    whole-command wall time
    B  the same play with ansible.builtin.set_fact instead (Ansible's floor)   whole-command wall time
    C  raw grpc.aio logins to every robot at once (the wire floor)             time of the logins, in-process
    D  bosdyn-client AuthClient.auth, robot after robot                         time of the logins, in-process
    E  one spot.auth.token lookup with a term per robot, then again served     time of the lookup call, in-process
       from token_cache (must make no request)

Every variant runs in a fresh process against a simulated fleet (spot-auth-sim, rate limit off) that
runs in its own process; the variants alternate round by round and the table shows medians.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COLLECTIONS = os.path.join(ROOT, "build", "collections")
PASSWORD = "Fleet-Benchmark-1"
USERNAME = "admin"
AUTHORITY = "auth.spot.robot"
CLIENT_NAME = "spot-auth-fleet-benchmark"
RPC_TIMEOUT = 60.0
VARIANTS = ("A", "B", "C", "D", "E")
VARIANT_NAMES = {
    "A": "play: spot.auth.token",
    "B": "play: set_fact",
    "C": "raw grpc.aio",
    "D": "bosdyn AuthClient, sequential",
    "E": "lookup, N terms",
}
PLAYS = {
    "A": "- hosts: spot\n  gather_facts: false\n  tasks:\n    - name: Log in\n      spot.auth.token:\n",
    "B": "- hosts: spot\n  gather_facts: false\n  tasks:\n    - name: Floor\n      ansible.builtin.set_fact:\n        fleet_benchmark: 1\n",
}
QUICK_ROBOTS = [10, 40]
FILE_LIMIT = 8192


# --------------------------------------------------------------------------------------------
# Worker side: C, D and E, each in a fresh interpreter; the result is one JSON line on stdout.


def _raise_file_limit():
    """One socket per robot: lift the soft open-files limit towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = FILE_LIMIT if hard == resource.RLIM_INFINITY else min(FILE_LIMIT, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _proc_status_kib(field):
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak_rss():
    """Start a new peak (VmHWM) from the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def process_cpu(pid):
    """CPU seconds process ``pid`` has used so far (every thread), from /proc."""
    with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _simulator_pid(sim_dir):
    with open(os.path.join(sim_dir, "control.json"), encoding="utf-8") as handle:
        return json.load(handle)["pid"]


def _robots(sim_dir):
    from spot_auth_sim.testing import read_inventory

    return read_inventory(os.path.join(sim_dir, "inventory.yml"))


def _request_total(sim_dir):
    from spot_auth_sim.control import ControlClient

    return sum(robot["request_count"] for robot in ControlClient.from_dir(sim_dir).fleet()["robots"])


def _load_collection():
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([COLLECTIONS])


class Interval:
    """Peak RSS growth (KiB) and CPU of this process and of the simulator over a block."""

    def __init__(self, sim_dir):
        self.simulator_pid = _simulator_pid(sim_dir)

    def __enter__(self):
        self.simulator_started = process_cpu(self.simulator_pid)
        self.cpu_started = time.process_time()
        self.before = _proc_status_kib("VmRSS")
        self.peak_reset = _reset_peak_rss()
        self.kib = None
        return self

    def __exit__(self, *exc_info):
        # Without a peak reset, the growth of the current RSS is the best available figure.
        self.kib = _proc_status_kib("VmHWM" if self.peak_reset else "VmRSS") - self.before
        self.cpu_seconds = time.process_time() - self.cpu_started  # every thread of the process
        self.simulator_cpu_seconds = process_cpu(self.simulator_pid) - self.simulator_started

    def report(self):
        return {"rss_growth_kib": self.kib, "peak_reset": self.peak_reset, "cpu_seconds": self.cpu_seconds,
                "simulator_cpu_seconds": self.simulator_cpu_seconds}


def worker_raw(sim_dir):
    """C: every login at once over grpc.aio, one TLS channel per robot, the collection's own messages."""
    import asyncio

    import grpc
    _load_collection()
    from ansible_collections.spot.auth.plugins.module_utils import _wire

    robots = _robots(sim_dir)
    ca_pem = robots[0].ca_pem
    options = [("grpc.ssl_target_name_override", AUTHORITY), ("grpc.use_local_subchannel_pool", 1)]

    async def login(robot, credentials):
        request = _wire.serialize(_wire.build_request(CLIENT_NAME, username=robot.username, password=robot.password))
        async with grpc.aio.secure_channel("%s:%d" % (robot.host, robot.port), credentials, options=options) as channel:
            call = channel.unary_unary(_wire.GET_AUTH_TOKEN_PATH)
            response = _wire.parse_response(await call(request, timeout=RPC_TIMEOUT))
        if _wire.enum_name(response, "status") != "STATUS_OK" or not response.token:
            raise RuntimeError("%s answered %s" % (robot.name, _wire.enum_name(response, "status")))
        return response.token

    async def all_logins():
        credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
        return await asyncio.gather(*(login(robot, credentials) for robot in robots))

    with Interval(sim_dir) as interval:
        started = time.perf_counter()
        tokens = asyncio.run(all_logins())
        seconds = time.perf_counter() - started
    return dict(interval.report(), seconds=seconds, tokens=len(tokens))


def worker_bosdyn(sim_dir):
    """D: what a bosdyn-client script does today: one robot after another, a channel and an AuthClient each."""
    import grpc
    try:
        from bosdyn.client.auth import AuthClient
        from bosdyn.client.channel import create_secure_channel
    except ImportError as error:
        raise SystemExit("variant D needs bosdyn-client (pip install bosdyn-client): %s" % error) from None

    robots = _robots(sim_dir)
    ca_pem = robots[0].ca_pem
    tokens = 0
    with Interval(sim_dir) as interval:
        started = time.perf_counter()
        for robot in robots:
            credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
            channel = create_secure_channel(robot.host, robot.port, credentials, AUTHORITY)
            try:
                client = AuthClient()
                client.channel = channel
                tokens += bool(client.auth(robot.username, robot.password, timeout=RPC_TIMEOUT))
            finally:
                channel.close()
        seconds = time.perf_counter() - started
    return dict(interval.report(), seconds=seconds, tokens=tokens)


def worker_lookup(sim_dir):
    """E: one lookup call with a term per robot; then the same call served from token_cache."""
    _load_collection()
    from ansible.plugins.loader import lookup_loader

    robots = _robots(sim_dir)
    lookup = lookup_loader.get("spot.auth.token")
    memo = sys.modules[type(lookup).__module__]._TOKENS
    terms = ["%s:%d" % (robot.host, robot.port) for robot in robots]
    options = {"username": robots[0].username, "password": robots[0].password, "ca_cert": robots[0].ca_path, "retries": 0}
    result = {}
    cache_dir = tempfile.mkdtemp(prefix="fleet-benchmark-cache-")
    try:
        with Interval(sim_dir) as interval:
            started = time.perf_counter()
            tokens = lookup.run(terms, variables={}, **options)
            result["seconds"] = time.perf_counter() - started
        result.update(interval.report())
        result["tokens"] = sum(bool(token) for token in tokens)

        memo.clear()  # a fresh process would not have the memo either: fill the cache from the robots
        started = time.perf_counter()
        lookup.run(terms, variables={}, token_cache=cache_dir, **options)
        result["fill_seconds"] = time.perf_counter() - started

        memo.clear()  # so the next call can only be served by the token cache
        requests_before = _request_total(sim_dir)
        started = time.perf_counter()
        cached = lookup.run(terms, variables={}, token_cache=cache_dir, **options)
        result["cached_seconds"] = time.perf_counter() - started
        result["cached_requests"] = _request_total(sim_dir) - requests_before
        result["cached_tokens"] = sum(bool(token) for token in cached)
    finally:
        for name in os.listdir(cache_dir):
            os.unlink(os.path.join(cache_dir, name))
        os.rmdir(cache_dir)
    return result


WORKERS = {"C": worker_raw, "D": worker_bosdyn, "E": worker_lookup}


def run_worker(variant, sim_dir):
    _raise_file_limit()
    result = WORKERS[variant](sim_dir)
    result["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# Orchestrator side


def timed_command(argv, env, cwd, timeout, stdout_path):
    """Run argv to completion: (wall seconds, exit code, peak RSS in KiB, CPU seconds), for it and its descendants.

    ``os.wait4`` gives the child's own resource usage, whose ``ru_maxrss`` covers the child and the
    descendants it waited for (ansible-playbook's forked workers), so every command is measured
    on its own. A watchdog kills the command's process group after ``timeout`` seconds.
    """
    with open(stdout_path, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        expired = []

        def kill():
            expired.append(True)
            try:
                os.killpg(process.pid, 9)
            except ProcessLookupError:
                pass

        watchdog = threading.Timer(timeout, kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            status, usage = os.wait4(process.pid, 0)[1:]
        finally:
            watchdog.cancel()
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
    if expired:
        raise RuntimeError("%s did not finish within %d s (output in %s)" % (os.path.basename(argv[1] if len(argv) > 1 else argv[0]),
                                                                             timeout, stdout_path))
    return seconds, process.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def _tail(path, limit=3000):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()[-limit:]


class Runner:
    """Runs one variant once against a running fleet and checks what it did."""

    def __init__(self, fleet, work_dir, forks, timeout):
        self.fleet = fleet
        self.work_dir = work_dir
        self.forks = forks
        self.timeout = timeout
        self.env = dict(os.environ)
        bin_dir = os.path.dirname(sys.executable)
        self.env["PATH"] = os.pathsep.join([bin_dir, self.env.get("PATH", "")])
        self.env["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS
        self.env.setdefault("ANSIBLE_NOCOLOR", "1")
        self.env.setdefault("GRPC_VERBOSITY", "ERROR")
        for variant, text in PLAYS.items():
            with open(os.path.join(work_dir, "play-%s.yml" % variant), "w", encoding="utf-8") as handle:
                handle.write(text)

    def requests(self):
        return sum(robot["request_count"] for robot in self.fleet.control.fleet()["robots"])

    def run(self, variant):
        robots = len(self.fleet.robots)
        log = os.path.join(self.work_dir, "last-%s.log" % variant)
        before = self.requests()
        sim_cpu = process_cpu(self.fleet.pid)
        if variant in PLAYS:
            argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", self.fleet.inventory_path,
                    "-f", str(self.forks), os.path.join(self.work_dir, "play-%s.yml" % variant)]
        else:
            argv = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--sim-dir", self.fleet.out_dir]
        seconds, code, max_rss, cpu = timed_command(argv, self.env, self.work_dir, self.timeout, log)
        sim_cpu = process_cpu(self.fleet.pid) - sim_cpu
        made = self.requests() - before
        if code != 0:
            raise RuntimeError("variant %s failed with exit code %s:\n%s" % (variant, code, _tail(log)))
        result = {"command_seconds": seconds, "max_rss_kib": max_rss, "command_cpu_seconds": cpu, "command_simulator_cpu_seconds": sim_cpu}
        if variant in PLAYS:
            result.update(seconds=seconds, cpu_seconds=cpu, simulator_cpu_seconds=sim_cpu)
            expected = robots if variant == "A" else 0
            recap = _tail(log, 200 * robots)
            if recap.count("failed=0") != robots or recap.count("unreachable=0") != robots:
                raise RuntimeError("variant %s: not every host succeeded:\n%s" % (variant, _tail(log)))
        else:
            with open(log, encoding="utf-8") as handle:
                lines = [line for line in handle.read().splitlines() if line.startswith("{")]
            worker = json.loads(lines[-1])
            result.update(worker)
            expected = 2 * robots if variant == "E" else robots  # E: the uncached call and the call filling the cache
            if worker.get("tokens") != robots or worker.get("cached_tokens", robots) != robots:
                raise RuntimeError("variant %s got %s tokens for %d robots" % (variant, worker.get("tokens"), robots))
        result["requests"] = made
        if made != expected:
            raise RuntimeError("variant %s made %d requests to %d robots, expected %d" % (variant, made, robots, expected))
        return result


def measure(robots, latency_ms, rounds, forks, timeout, log):
    """All variants against one fleet, alternating round by round; returns {variant: [result, ...]}."""
    from spot_auth_sim.testing import SubprocessFleet

    args = ["--rate-limit", "0", "--latency-ms", "%g" % latency_ms, "--password", PASSWORD, "--username", USERNAME]
    results = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="fleet-benchmark-") as work_dir:
        with SubprocessFleet(robots=robots, args=args, out_dir=os.path.join(work_dir, "sim"), start_timeout=120) as fleet:
            runner = Runner(fleet, work_dir, forks, timeout)
            for round_index in range(rounds):
                # Rotate the order as well, so no variant always runs right after the same neighbour.
                order = VARIANTS[round_index % len(VARIANTS):] + VARIANTS[:round_index % len(VARIANTS)]
                for variant in order:
                    try:
                        result = runner.run(variant)
                    except (RuntimeError, OSError) as error:
                        state = "running" if fleet.process.poll() is None else "exited with %s" % fleet.process.returncode
                        raise RuntimeError("%d robots, %g ms, round %d, variant %s: %s\nsimulator %s; its stderr ends:\n%s"
                                           % (robots, latency_ms, round_index + 1, variant, error, state,
                                              _tail(os.path.join(fleet.out_dir, "sim-stderr.log")))) from None
                    results[variant].append(result)
                    log("  %3d robots %4g ms  round %d  %s %-30s %7.3f s"
                        % (robots, latency_ms, round_index + 1, variant, VARIANT_NAMES[variant], result["seconds"]))
    return results


MEDIANS = ("seconds", "command_seconds", "cpu_seconds", "command_cpu_seconds", "simulator_cpu_seconds", "max_rss_kib", "rss_growth_kib")


def _median(results, key):
    values = [result[key] for result in results if result.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(results, robots):
    """Medians and ratios of one (latency, robots) cell."""
    cell = {"robots": robots, "rounds": len(results["A"])}
    for variant in VARIANTS:
        cell[variant] = {key: _median(results[variant], key) for key in MEDIANS}
        cell[variant]["samples"] = [result["seconds"] for result in results[variant]]
        for key in ("cpu_seconds", "simulator_cpu_seconds"):
            cell[variant][key.replace("seconds", "ms_per_robot")] = 1000.0 * cell[variant][key] / robots
    lookup = results["E"]
    cell["E"].update({
        "cached_seconds": _median(lookup, "cached_seconds"),
        "cached_samples": [result["cached_seconds"] for result in lookup],
        "fill_seconds": _median(lookup, "fill_seconds"),
        "cached_requests": max(result["cached_requests"] for result in lookup),
        "peak_reset": all(result.get("peak_reset") for result in lookup),
    })
    seconds = {variant: cell[variant]["seconds"] for variant in VARIANTS}
    cell["ratios"] = {
        "A/B": seconds["A"] / seconds["B"],
        "E/C": seconds["E"] / seconds["C"],
        "D/E": seconds["D"] / seconds["E"],
        # A is a whole command: compare it with D's whole command (interpreter and bosdyn import included).
        "D/A": cell["D"]["command_seconds"] / seconds["A"],
    }
    cell["cached_ms_per_robot"] = 1000.0 * cell["E"]["cached_seconds"] / robots
    for variant in "CDE":
        cell[variant]["rss_growth_kib_per_robot"] = cell[variant]["rss_growth_kib"] / robots
    cell["A_minus_B_kib_per_robot"] = (cell["A"]["max_rss_kib"] - cell["B"]["max_rss_kib"]) / robots
    return cell


def _slope(cells, key):
    """KiB per robot between the smallest and the largest fleet of one latency, or None."""
    if len(cells) < 2:
        return None
    low, high = cells[0], cells[-1]
    return (key(high) - key(low)) / (high["robots"] - low["robots"])


def evaluate(report):
    """The targets of the benchmark: [(target, measured, PASS / FAIL / n/a)]."""
    targets = []
    by_latency = {entry["latency_ms"]: entry["cells"] for entry in report["latencies"]}

    def verdict(ok):
        return "PASS" if ok else "FAIL"

    def at(latency, robots):
        for cell in by_latency.get(latency, []):
            if cell["robots"] == robots:
                return cell
        return None

    def largest(latency):
        cells = by_latency.get(latency) or []
        return cells[-1] if cells else None

    def fixed_size(name, latency, check, describe):
        cell = at(latency, 500)
        if cell is not None:
            targets.append((name, describe(cell), verdict(check(cell))))
        elif largest(latency) is not None:
            cell = largest(latency)
            targets.append((name, "%s at %d robots" % (describe(cell), cell["robots"]), "n/a"))
        else:
            targets.append((name, "latency %g ms not run" % latency, "n/a"))

    fixed_size("A/B <= 1.3 at 500 robots, loopback", 0, lambda c: c["ratios"]["A/B"] <= 1.3,
               lambda c: "%.2f (A %.1f s, B %.1f s)" % (c["ratios"]["A/B"], c["A"]["seconds"], c["B"]["seconds"]))
    loopback = by_latency.get(0)
    if loopback:
        worst = max(loopback, key=lambda c: c["ratios"]["E/C"])
        targets.append(("E uncached <= 1.5 x C, loopback (worst N)", "%.2f at %d robots" % (worst["ratios"]["E/C"], worst["robots"]),
                        verdict(worst["ratios"]["E/C"] <= 1.5)))
    else:
        targets.append(("E uncached <= 1.5 x C, loopback", "latency 0 ms not run", "n/a"))
    cells = [cell for entry in report["latencies"] for cell in entry["cells"]]
    requests = max(cell["E"]["cached_requests"] for cell in cells)
    targets.append(("E cached makes no request (every run)", "%d requests" % requests, verdict(requests == 0)))
    worst = max(cells, key=lambda c: c["cached_ms_per_robot"])
    targets.append(("E cached < 2 ms per robot (worst N)", "%.2f ms at %d robots" % (worst["cached_ms_per_robot"], worst["robots"]),
                    verdict(worst["cached_ms_per_robot"] < 2.0)))
    # D/C is the most any client could reach against this simulator on this machine: printed next to D/E.
    fixed_size("D/E >= 20 at 500 robots, 50 ms latency", 50, lambda c: c["ratios"]["D/E"] >= 20,
               lambda c: "%.1f (wire floor D/C %.1f)" % (c["ratios"]["D/E"], c["D"]["seconds"] / c["C"]["seconds"]))
    fixed_size("A faster than D at 500 robots, 50 ms latency", 50, lambda c: c["ratios"]["D/A"] > 1,
               lambda c: "D/A %.2f (A %.1f s, D cmd %.1f s)" % (c["ratios"]["D/A"], c["A"]["seconds"], c["D"]["command_seconds"]))
    for variant, key, what in (("A", "max_rss_kib", "the play"), ("E", "rss_growth_kib", "the lookup")):
        name = "controller memory < 50 KiB per robot, %s %s" % (variant, what)
        slopes = [(entry["latency_ms"], _slope(entry["cells"], lambda c, v=variant, k=key: c[v][k])) for entry in report["latencies"]]
        slopes = [(latency, slope) for latency, slope in slopes if slope is not None]
        if not slopes:
            targets.append((name, "needs two fleet sizes", "n/a"))
            continue
        latency, slope = max(slopes, key=lambda item: item[1])
        if variant == "A":
            floor = max(_slope(entry["cells"], lambda c: c["B"]["max_rss_kib"]) for entry in report["latencies"])
            reference = "B %.0f" % floor
        else:
            floor = max(_slope(entry["cells"], lambda c: c["C"]["rss_growth_kib"]) for entry in report["latencies"])
            reference = "wire floor C %.0f" % floor
        targets.append((name, "%.1f KiB at %g ms (%s)" % (slope, latency, reference), verdict(slope < 50)))
    return targets


def _fmt(value, pattern="%.3f"):
    return "-" if value is None else pattern % value


def format_report(report):
    lines = []
    for entry in report["latencies"]:
        lines.append("")
        lines.append("latency %g ms%s: median seconds of %d round(s); A, B whole command, C, D, E the logins in-process"
                     % (entry["latency_ms"], " (bare loopback)" if not entry["latency_ms"] else "", entry["cells"][0]["rounds"]))
        header = ("%6s %8s %8s %8s %8s %8s %8s %9s %6s %6s %6s %6s %9s %8s %8s %9s"
                  % ("robots", "A play", "B floor", "C wire", "D sdk", "D cmd", "E look", "E cached", "A/B", "E/C", "D/E", "D/A",
                     "ms/robot", "A MiB", "B MiB", "E KiB/r"))
        lines.append(header)
        lines.append("-" * len(header))
        for cell in entry["cells"]:
            lines.append("%6d %8.2f %8.2f %8.3f %8.2f %8.2f %8.3f %9.3f %6.2f %6.2f %6.1f %6.2f %9.3f %8.1f %8.1f %9.1f" % (
                cell["robots"], cell["A"]["seconds"], cell["B"]["seconds"], cell["C"]["seconds"], cell["D"]["seconds"],
                cell["D"]["command_seconds"], cell["E"]["seconds"], cell["E"]["cached_seconds"], cell["ratios"]["A/B"],
                cell["ratios"]["E/C"], cell["ratios"]["D/E"], cell["ratios"]["D/A"], cell["cached_ms_per_robot"],
                cell["A"]["max_rss_kib"] / 1024.0, cell["B"]["max_rss_kib"] / 1024.0, cell["E"]["rss_growth_kib_per_robot"]))
        lines.append("")
        header = "%6s" % "robots" + "".join("%8s %6s" % (variant + " here", "sim") for variant in VARIANTS) + "%10s %9s" % ("C KiB/r", "D KiB/r")
        lines.append("CPU ms per robot over the measured interval, on this side (A, B: ansible-playbook and its workers) and in the simulator")
        lines.append(header)
        lines.append("-" * len(header))
        for cell in entry["cells"]:
            cpu = "".join("%8.2f %6.2f" % (cell[variant]["cpu_ms_per_robot"], cell[variant]["simulator_cpu_ms_per_robot"]) for variant in VARIANTS)
            memory = "%10.1f %9.1f" % (cell["C"]["rss_growth_kib_per_robot"], cell["D"]["rss_growth_kib_per_robot"])
            lines.append("%6d%s%s" % (cell["robots"], cpu, memory))
        for cell in entry["cells"]:
            extra = {key: 1000.0 * (cell["A"][key] - cell["B"][key]) / cell["robots"] for key in ("seconds", "cpu_seconds", "simulator_cpu_seconds")}
            lines.append("A minus B per robot at %d robots: %.1f ms wall, %.1f ms CPU here, %.1f ms CPU in the simulator"
                         % (cell["robots"], extra["seconds"], extra["cpu_seconds"], extra["simulator_cpu_seconds"]))
        slopes = [(name, _slope(entry["cells"], key)) for name, key in (
            ("A", lambda c: c["A"]["max_rss_kib"]), ("B", lambda c: c["B"]["max_rss_kib"]),
            ("C", lambda c: c["C"]["rss_growth_kib"]), ("E", lambda c: c["E"]["rss_growth_kib"]))]
        lines.append("memory per added robot (smallest to largest fleet): %s; A minus B at %d robots: %.1f KiB per robot"
                     % (", ".join("%s %s KiB" % (name, _fmt(slope, "%.1f")) for name, slope in slopes), entry["cells"][-1]["robots"],
                        entry["cells"][-1]["A_minus_B_kib_per_robot"]))
    lines.append("")
    width = max(len(target[0]) for target in report["targets"])
    measured_width = max(len(target[1]) for target in report["targets"])
    lines.append("%-*s  %-*s  %s" % (width, "target", measured_width, "measured", "result"))
    lines.append("-" * (width + measured_width + 10))
    for name, measured, result in report["targets"]:
        lines.append("%-*s  %-*s  %s" % (width, name, measured_width, measured, result))
    lines.append("")
    lines.append("total run time %.0f s" % report["run_seconds"])
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, nargs="+", default=None, help="fleet sizes (default 50 200 500)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per fleet size (default 3)")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0, 50], help="simulated answer delays (default 0 50)")
    parser.add_argument("--forks", type=int, default=50, help="ansible-playbook forks (default 50)")
    parser.add_argument("--quick", action="store_true", help="smoke run: %s robots, 1 round" % " and ".join(map(str, QUICK_ROBOTS)))
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--fail-on-target", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--timeout", type=float, default=600, help="seconds any one command may take (default 600)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--sim-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker, args.sim_dir)
        return 0
    robot_counts = sorted(set(args.robots or (QUICK_ROBOTS if args.quick else [50, 200, 500])))
    rounds = args.rounds or (1 if args.quick else 3)
    if min(robot_counts) < 1 or rounds < 1 or not 1 <= args.forks <= 500:
        parser.error("robots and rounds must be at least 1, forks from 1 to 500")
    if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "spot", "auth")):
        parser.error("%s does not hold ansible_collections/spot/auth" % COLLECTIONS)

    started = time.perf_counter()

    def log(message):
        print(message, file=sys.stderr, flush=True)

    report = {"robots": robot_counts, "rounds": rounds, "forks": args.forks, "latencies": [], "variants": VARIANT_NAMES,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}}
    for latency in args.latency_ms:
        cells = []
        for robots in robot_counts:
            results = measure(robots, latency, rounds, args.forks, args.timeout, log)
            cells.append(summarise(results, robots))
            cells[-1]["raw"] = results
        report["latencies"].append({"latency_ms": latency, "cells": cells})
    report["run_seconds"] = time.perf_counter() - started
    report["targets"] = evaluate(report)
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            targets = [dict(zip(("target", "measured", "result"), target)) for target in report["targets"]]
            json.dump(dict(report, targets=targets), handle, indent=2, sort_keys=True)
            handle.write("\n")
    if args.fail_on_target and any(target[2] == "FAIL" for target in report["targets"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
