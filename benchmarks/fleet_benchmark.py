# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet benchmark: spot.auth against Ansible's own floor, the raw wire and bosdyn-client, side by side.

    .venv/bin/python benchmarks/fleet_benchmark.py                 # 50, 200 and 500 robots, 3 rounds, 0 and 50 ms
    .venv/bin/python benchmarks/fleet_benchmark.py --quick         # smoke run: 10 and 40 robots, 1 round
    .venv/bin/python benchmarks/fleet_benchmark.py --robots 500 2000 --latency-robots 500 \\
        --lookup-robots 5000 --file-limit 1024 --json out.json     # the performance targets in one run

Variants (benchmarks/README.md explains them and the table):

    A  ansible-playbook, one spot.auth.token task on every robot (forks 50)    whole-command wall time
    B  the same play with ansible.builtin.set_fact instead (Ansible's floor)   whole-command wall time
    C  raw grpc.aio logins, at most --concurrency at once (the wire floor)     time of the logins, in-process
    D  bosdyn-client AuthClient.auth, robot after robot                         time of the logins, in-process
    E  one spot.auth.token lookup with a term per robot; then, in a new        time of the lookup call, in-process
       process, the same call served from token_cache (must make no request)

The module and the lookup hand their handshakes to the run's session agent, a separate local process
(plugin_utils/_agent.py); its CPU and peak memory are counted with A and E. Every variant runs in a
fresh process against a simulated fleet (spot-auth-sim, rate limit off) that runs in its own process;
the variants alternate round by round and the table shows medians.
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
LOOKUP_VARIANTS = ("C", "E")  # what a --lookup-robots fleet runs
VARIANT_NAMES = {
    "A": "play: spot.auth.token",
    "B": "play: set_fact",
    "C": "raw grpc.aio, bounded",
    "D": "bosdyn AuthClient, sequential",
    "E": "lookup, N terms (+ cached)",
}
PLAYS = {
    "A": "- hosts: spot\n  gather_facts: false\n  tasks:\n    - name: Log in\n      spot.auth.token:\n",
    "B": "- hosts: spot\n  gather_facts: false\n  tasks:\n    - name: Floor\n      ansible.builtin.set_fact:\n        fleet_benchmark: 1\n",
}
DEFAULT_ROBOTS = [50, 200, 500]
QUICK_ROBOTS = [10, 40]
DEFAULT_CONCURRENCY = 200  # the lookup's own default; C uses the same bound
RAISED_FILE_LIMIT = 8192
AGENT_MARKER = b"plugin_utils._agent"  # in the command line of the run's session agent
AGENT_POLL_SECONDS = 0.1

# The performance targets (benchmarks/README.md, "Targets").
PLAY_TARGET_ROBOTS = (500, 2000)
PLAY_TARGET_RATIO = 1.2
LOOKUP_TARGET_ROBOTS = 5000
LOOKUP_TARGET_FILES = 1024
LOOKUP_TARGET_RATIO = 1.5
MEMORY_TARGET_KIB = 40.0
CACHED_TARGET_MS = 1.0
SDK_TARGET_ROBOTS = 500
SDK_TARGET_LATENCY = 50
SDK_TARGET_RATIO = 20.0
PLAY_MEMORY_SLOPE_KIB = 50.0


# --------------------------------------------------------------------------------------------
# Both sides: the run's session agent, found through /proc


def process_cpu(pid):
    """CPU seconds process ``pid`` has used so far (every thread), from /proc."""
    with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid, field):
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM), or None."""
    with open("/proc/%s/status" % pid, encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def find_agents(run_pid):
    """Pids of the session agents of the run ``run_pid`` (normally one).

    The agent's command line is ``python -c <boot> <collections> <directory> <run pid> <run start>``
    and holds ``plugin_utils._agent``; the run is the ansible-playbook process, or the Python
    process that called the lookup directly.
    """
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 5 and AGENT_MARKER in argv[2] and argv[5] == str(run_pid).encode("ascii"):
            found.append(int(name))
    return found


def agent_usage(pid):
    """{"hwm_kib", "rss_kib", "cpu_seconds"} of a running agent, or None once it is gone."""
    try:
        return {"hwm_kib": status_kib(pid, "VmHWM"), "rss_kib": status_kib(pid, "VmRSS"), "cpu_seconds": process_cpu(pid)}
    except (OSError, ValueError, IndexError, TypeError):
        return None


class AgentWatch:
    """Samples the agents of a run while it runs: the last figures seen before each one exited."""

    def __init__(self, run_pid):
        self.run_pid = run_pid
        self.last = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            pids = set(self.last) or set(find_agents(self.run_pid))
            for pid in pids:
                usage = agent_usage(pid)
                if usage is not None and usage["hwm_kib"] is not None:  # a zombie has no memory fields
                    self.last[pid] = usage
            self._stop.wait(AGENT_POLL_SECONDS)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.total()

    def total(self):
        if not self.last:
            return {"agents": 0, "agent_hwm_kib": None, "agent_cpu_seconds": None}
        return {"agents": len(self.last), "agent_hwm_kib": sum(u["hwm_kib"] for u in self.last.values()),
                "agent_cpu_seconds": sum(u["cpu_seconds"] for u in self.last.values())}


# --------------------------------------------------------------------------------------------
# Worker side: C, D and E, each in a fresh interpreter; the result is one JSON line on stdout.


def set_file_limit(limit):
    """RLIMIT_NOFILE soft = hard = ``limit`` for this process and its children (the lookup's agent);
    without one, lift the soft limit towards RAISED_FILE_LIMIT (one socket per robot) as before."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if limit:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        return
    want = RAISED_FILE_LIMIT if hard == resource.RLIM_INFINITY else min(RAISED_FILE_LIMIT, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _reset_peak_rss():
    """Start a new peak (VmHWM) from the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _simulator_pid(sim_dir):
    with open(os.path.join(sim_dir, "control.json"), encoding="utf-8") as handle:
        return json.load(handle)["pid"]


def _robots(sim_dir):
    from spot_auth_sim.testing import read_inventory

    return read_inventory(os.path.join(sim_dir, "inventory.yml"))


def _request_total(sim_dir):
    from spot_auth_sim.control import ControlClient

    return sum(robot["request_count"] for robot in ControlClient.from_dir(sim_dir, timeout=60.0).fleet()["robots"])


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
        self.before = status_kib("self", "VmRSS")
        self.peak_reset = _reset_peak_rss()
        self.kib = None
        return self

    def __exit__(self, *exc_info):
        # Without a peak reset, the growth of the current RSS is the best available figure.
        self.kib = status_kib("self", "VmHWM" if self.peak_reset else "VmRSS") - self.before
        self.cpu_seconds = time.process_time() - self.cpu_started  # every thread of the process
        self.simulator_cpu_seconds = process_cpu(self.simulator_pid) - self.simulator_started

    def report(self):
        return {"rss_growth_kib": self.kib, "peak_reset": self.peak_reset, "cpu_seconds": self.cpu_seconds,
                "simulator_cpu_seconds": self.simulator_cpu_seconds}


def worker_raw(sim_dir, concurrency):
    """C: every login over grpc.aio, at most ``concurrency`` at once, one TLS channel per robot
    (closed after its call), the collection's own messages: the wire floor."""
    import asyncio

    import grpc
    _load_collection()
    from ansible_collections.spot.auth.plugins.module_utils import _wire

    robots = _robots(sim_dir)
    ca_pem = robots[0].ca_pem
    options = [("grpc.ssl_target_name_override", AUTHORITY), ("grpc.use_local_subchannel_pool", 1)]

    async def login(robot, credentials, bound):
        request = _wire.serialize(_wire.build_request(CLIENT_NAME, username=robot.username, password=robot.password))
        async with bound:
            async with grpc.aio.secure_channel("%s:%d" % (robot.host, robot.port), credentials, options=options) as channel:
                call = channel.unary_unary(_wire.GET_AUTH_TOKEN_PATH)
                response = _wire.parse_response(await call(request, timeout=RPC_TIMEOUT))
        if _wire.enum_name(response, "status") != "STATUS_OK" or not response.token:
            raise RuntimeError("%s answered %s" % (robot.name, _wire.enum_name(response, "status")))
        return response.token

    async def all_logins():
        credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
        bound = asyncio.Semaphore(concurrency) if concurrency else _Unbounded()
        return await asyncio.gather(*(login(robot, credentials, bound) for robot in robots))

    with Interval(sim_dir) as interval:
        started = time.perf_counter()
        tokens = asyncio.run(all_logins())
        seconds = time.perf_counter() - started
    return dict(interval.report(), seconds=seconds, tokens=len(tokens))


class _Unbounded:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        return False


def worker_bosdyn(sim_dir, _concurrency):
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


def _lookup(sim_dir, concurrency):
    """(robots, lookup, terms, options) of a lookup over the whole fleet by address."""
    _load_collection()
    from ansible.plugins.loader import lookup_loader

    robots = _robots(sim_dir)
    lookup = lookup_loader.get("spot.auth.token")
    terms = ["%s:%d" % (robot.host, robot.port) for robot in robots]
    # on_error=warn: a failed robot gives an empty token (counted) and a warning naming the error
    # type in the log, instead of ending the call at the first failure.
    options = {"username": robots[0].username, "password": robots[0].password, "ca_cert": robots[0].ca_path, "retries": 0,
               "on_error": "warn", "concurrency": concurrency or DEFAULT_CONCURRENCY}
    return robots, lookup, terms, options


def worker_lookup(sim_dir, concurrency):
    """E: one lookup call with a term per robot, through the session agent this process starts.

    Memory: this process's peak RSS growth over the call plus the agent's peak RSS (VmHWM, read just
    before this worker exits; the agent starts within the call, so all of it counts). CPU: this
    process over the call plus everything the agent used.
    """
    _robots_list, lookup, terms, options = _lookup(sim_dir, concurrency)
    result = {}
    with Interval(sim_dir) as interval:
        started = time.perf_counter()
        tokens = lookup.run(terms, variables={}, **options)
        result["seconds"] = time.perf_counter() - started
    result.update(interval.report())
    result["tokens"] = sum(bool(token) for token in tokens)
    result["lookup_cpu_seconds"] = result["cpu_seconds"]
    result["lookup_growth_kib"] = result["rss_growth_kib"]
    agents = [usage for usage in (agent_usage(pid) for pid in find_agents(os.getpid())) if usage is not None]
    result["agents"] = len(agents)
    result["agent_hwm_kib"] = sum(usage["hwm_kib"] for usage in agents) if agents else None
    result["agent_cpu_seconds"] = sum(usage["cpu_seconds"] for usage in agents) if agents else None
    if agents:
        result["cpu_seconds"] += result["agent_cpu_seconds"]
        result["rss_growth_kib"] += result["agent_hwm_kib"]  # the controller's growth: this process and its agent
    return result


def worker_lookup_cached(sim_dir, concurrency):
    """E cached, in a process of its own (a new run): fill token_cache, then time the call it serves.

    The fill (untimed) runs with session=false, so this process does the handshakes itself and writes
    the cache; the timed call then goes through a fresh session agent, whose memory is empty, so
    only the token cache can answer it without a request.
    """
    _robots_list, lookup, terms, options = _lookup(sim_dir, concurrency)
    result = {}
    cache_dir = tempfile.mkdtemp(prefix="fleet-benchmark-cache-")
    try:
        started = time.perf_counter()
        filled = lookup.run(terms, variables={}, token_cache=cache_dir, session=False, **options)
        result["fill_seconds"] = time.perf_counter() - started
        result["fill_tokens"] = sum(bool(token) for token in filled)
        result["cache_entries"] = len(os.listdir(cache_dir))
        requests_before = _request_total(sim_dir)
        started = time.perf_counter()
        cached = lookup.run(terms, variables={}, token_cache=cache_dir, **options)
        result["cached_seconds"] = time.perf_counter() - started
        result["cached_requests"] = _request_total(sim_dir) - requests_before
        result["cached_tokens"] = sum(bool(token) for token in cached)
        result["cached_same_tokens"] = sum(a == b for a, b in zip(filled, cached) if a)
        result["cached_agents"] = len(find_agents(os.getpid()))
    finally:
        for name in os.listdir(cache_dir):
            os.unlink(os.path.join(cache_dir, name))
        os.rmdir(cache_dir)
    return result


WORKERS = {"C": worker_raw, "D": worker_bosdyn, "E": worker_lookup, "E-cached": worker_lookup_cached}
LIMITED_WORKERS = ("C", "E", "E-cached")  # the ones --file-limit applies to


def run_worker(variant, sim_dir, file_limit, concurrency):
    set_file_limit(file_limit if variant in LIMITED_WORKERS else None)
    result = WORKERS[variant](sim_dir, concurrency)
    result["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["file_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# Orchestrator side


def timed_command(argv, env, cwd, timeout, stdout_path, watch_agent=False):
    """Run argv to completion: (wall seconds, exit code, peak RSS in KiB, CPU seconds, agent figures).

    ``os.wait4`` gives the child's own resource usage, whose ``ru_maxrss`` covers the child and the
    descendants it waited for (ansible-playbook's forked workers), so every command is measured
    on its own. The session agent a command starts is nobody's waited-for child (it runs in a
    session of its own), so with ``watch_agent`` it is sampled through /proc while the command runs.
    A watchdog kills the command's process group after ``timeout`` seconds.
    """
    with open(stdout_path, "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        watch = AgentWatch(process.pid).start() if watch_agent else None
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
            agents = watch.stop() if watch else None
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
    if expired:
        raise RuntimeError("%s did not finish within %d s (output in %s)" % (os.path.basename(argv[1] if len(argv) > 1 else argv[0]),
                                                                             timeout, stdout_path))
    return seconds, process.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, agents


def _tail(path, limit=3000):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()[-limit:]


def _warnings(path, limit=600):
    """The first lookup warning in a worker's log (it names the failures' error types), shortened."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if "WARNING" in line:
                return line.strip()[:limit]
    return ""


class Runner:
    """Runs one variant once against a running fleet and checks what it did."""

    def __init__(self, fleet, work_dir, forks, timeout, file_limit, concurrency):
        self.fleet = fleet
        self.work_dir = work_dir
        self.forks = forks
        self.timeout = timeout
        self.file_limit = file_limit
        self.concurrency = concurrency
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

    def _worker(self, variant):
        """(result of a worker command, requests it made, log path)."""
        log = os.path.join(self.work_dir, "last-%s.log" % variant)
        before = self.requests()
        sim_cpu = process_cpu(self.fleet.pid)
        argv = [sys.executable, os.path.abspath(__file__), "--worker", variant, "--sim-dir", self.fleet.out_dir,
                "--concurrency", str(self.concurrency)]
        if self.file_limit:
            argv += ["--file-limit", str(self.file_limit)]
        seconds, code, max_rss, cpu, _agents = timed_command(argv, self.env, self.work_dir, self.timeout, log)
        sim_cpu = process_cpu(self.fleet.pid) - sim_cpu
        made = self.requests() - before
        if code != 0:
            raise RuntimeError("variant %s failed with exit code %s:\n%s" % (variant, code, _tail(log)))
        with open(log, encoding="utf-8") as handle:
            lines = [line for line in handle.read().splitlines() if line.startswith("{")]
        result = json.loads(lines[-1])
        result.update(command_seconds=seconds, command_max_rss_kib=max_rss, command_cpu_seconds=cpu,
                      command_simulator_cpu_seconds=sim_cpu)
        return result, made, log

    def run(self, variant):
        robots = len(self.fleet.robots)
        if variant not in PLAYS:
            result, made, log = self._worker(variant)
            result["requests"] = made
            if variant == "E":
                return self._lookup(result, robots, log)
            if result.get("tokens") != robots:
                raise RuntimeError("variant %s got %s tokens for %d robots" % (variant, result.get("tokens"), robots))
            if made != robots:
                raise RuntimeError("variant %s made %d requests to %d robots, expected %d" % (variant, made, robots, robots))
            return result
        log = os.path.join(self.work_dir, "last-%s.log" % variant)
        before = self.requests()
        sim_cpu = process_cpu(self.fleet.pid)
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", self.fleet.inventory_path,
                "-f", str(self.forks), os.path.join(self.work_dir, "play-%s.yml" % variant)]
        seconds, code, max_rss, cpu, agents = timed_command(argv, self.env, self.work_dir, self.timeout, log, watch_agent=True)
        sim_cpu = process_cpu(self.fleet.pid) - sim_cpu
        made = self.requests() - before
        if code != 0:
            raise RuntimeError("variant %s failed with exit code %s:\n%s" % (variant, code, _tail(log)))
        result = {"seconds": seconds, "command_seconds": seconds, "max_rss_kib": max_rss, "playbook_cpu_seconds": cpu,
                  "simulator_cpu_seconds": sim_cpu, "command_simulator_cpu_seconds": sim_cpu, "requests": made}
        result.update(agents)
        # The run's controller: ansible-playbook, its workers and its session agent.
        result["cpu_seconds"] = result["command_cpu_seconds"] = cpu + (agents["agent_cpu_seconds"] or 0.0)
        result["controller_kib"] = max_rss + (agents["agent_hwm_kib"] or 0)
        recap = _tail(log, 200 * robots)
        if recap.count("failed=0") != robots or recap.count("unreachable=0") != robots:
            raise RuntimeError("variant %s: not every host succeeded:\n%s" % (variant, _tail(log)))
        expected = robots if variant == "A" else 0
        if made != expected:
            raise RuntimeError("variant %s made %d requests to %d robots, expected %d" % (variant, made, robots, expected))
        if variant == "A" and agents["agents"] != 1:
            raise RuntimeError("variant A: expected one session agent for the run, saw %d" % agents["agents"])
        return result

    def _lookup(self, result, robots, log):
        """E: the uncached call has run; a missing token is recorded (the targets report it), not fatal.
        Then E cached in a fresh process."""
        problems = []
        if result["tokens"] != robots:
            problems.append("uncached call: %d of %d tokens (%s)" % (result["tokens"], robots, _warnings(log)))
        elif result["requests"] != robots:
            raise RuntimeError("variant E made %d requests to %d robots, expected %d" % (result["requests"], robots, robots))
        if result.get("agents") != 1:
            problems.append("uncached call: %s session agents found, expected 1" % result.get("agents"))
        cached, made, cached_log = self._worker("E-cached")
        for key in ("fill_seconds", "fill_tokens", "cache_entries", "cached_seconds", "cached_requests", "cached_tokens",
                    "cached_same_tokens", "cached_agents"):
            result[key] = cached[key]
        result["fill_requests"] = made - cached["cached_requests"]
        if cached["fill_tokens"] != robots or cached["cache_entries"] != robots:
            problems.append("cache fill: %d tokens, %d cache entries for %d robots (%s)"
                            % (cached["fill_tokens"], cached["cache_entries"], robots, _warnings(cached_log)))
        if cached["cached_tokens"] != robots or cached["cached_same_tokens"] != cached["fill_tokens"]:
            problems.append("cached call: %d tokens, %d of them the cached ones" % (cached["cached_tokens"], cached["cached_same_tokens"]))
        result["problems"] = problems
        return result


def cell_plan(args, robot_counts):
    """[(latency, robots, variants)] in the order they run."""
    plan = []
    for latency in args.latency_ms:
        sizes = robot_counts if latency == 0 or not args.latency_robots else sorted(set(args.latency_robots))
        plan.extend((latency, robots, VARIANTS) for robots in sizes)
    full = {(latency, robots) for latency, robots, _variants in plan}
    for latency in args.lookup_latency_ms:
        plan.extend((latency, robots, LOOKUP_VARIANTS) for robots in sorted(set(args.lookup_robots or []))
                    if (latency, robots) not in full)
    return plan


def measure(robots, latency_ms, variants, rounds, args, log):
    """The variants against one fleet, alternating round by round; returns {variant: [result, ...]}."""
    from spot_auth_sim.testing import SubprocessFleet

    sim_args = ["--rate-limit", "0", "--latency-ms", "%g" % latency_ms, "--password", PASSWORD, "--username", USERNAME]
    results = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory(prefix="fleet-benchmark-") as work_dir:
        with SubprocessFleet(robots=robots, args=sim_args, out_dir=os.path.join(work_dir, "sim"), start_timeout=300) as fleet:
            log("  %d robots, %g ms: simulator ready in %.1f s" % (robots, latency_ms, fleet.startup_seconds))
            runner = Runner(fleet, work_dir, args.forks, args.timeout, args.file_limit, args.concurrency)
            for round_index in range(rounds):
                # Rotate the order as well, so no variant always runs right after the same neighbour.
                shift = round_index % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    try:
                        result = runner.run(variant)
                    except (RuntimeError, OSError) as error:
                        state = "running" if fleet.process.poll() is None else "exited with %s" % fleet.process.returncode
                        raise RuntimeError("%d robots, %g ms, round %d, variant %s: %s\nsimulator %s; its stderr ends:\n%s"
                                           % (robots, latency_ms, round_index + 1, variant, error, state,
                                              _tail(os.path.join(fleet.out_dir, "sim-stderr.log")))) from None
                    results[variant].append(result)
                    extra = ""
                    if variant == "E":
                        problems = "  PROBLEM: " + "; ".join(result["problems"]) if result["problems"] else ""
                        extra = "  cached %.3f s, %d requests%s" % (result["cached_seconds"], result["cached_requests"], problems)
                    log("  %5d robots %4g ms  round %d  %s %-30s %8.3f s%s"
                        % (robots, latency_ms, round_index + 1, variant, VARIANT_NAMES[variant], result["seconds"], extra))
    return results


def _median(results, key):
    values = [result[key] for result in results if isinstance(result.get(key), (int, float)) and not isinstance(result.get(key), bool)]
    return statistics.median(values) if values else None


def summarise(results, robots):
    """Medians and ratios of one (latency, robots) cell; variants that did not run are None."""
    some = next(iter(results.values()))
    cell = {"robots": robots, "rounds": len(some), "variants": sorted(results)}
    for variant in VARIANTS:
        runs = results.get(variant)
        if not runs:
            cell[variant] = None
            continue
        keys = sorted({key for result in runs for key in result})
        summary = {key: _median(runs, key) for key in keys}
        summary = {key: value for key, value in summary.items() if value is not None}
        summary["samples"] = [result["seconds"] for result in runs]
        for key in ("cpu_seconds", "simulator_cpu_seconds", "agent_cpu_seconds", "lookup_cpu_seconds"):
            if summary.get(key) is not None:
                summary[key.replace("seconds", "ms_per_robot")] = 1000.0 * summary[key] / robots
        if "rss_growth_kib" in summary:
            summary["rss_growth_kib_per_robot"] = summary["rss_growth_kib"] / robots
        cell[variant] = summary
    lookup = cell["E"]
    if lookup is not None:
        runs = results["E"]
        lookup["cached_samples"] = [result["cached_seconds"] for result in runs]
        lookup["cached_requests"] = max(result["cached_requests"] for result in runs)
        lookup["min_tokens"] = min(result["tokens"] for result in runs)
        lookup["problems"] = [problem for result in runs for problem in result["problems"]]
        lookup["peak_reset"] = all(result.get("peak_reset") for result in runs)
        cell["cached_ms_per_robot"] = 1000.0 * lookup["cached_seconds"] / robots
    seconds = {variant: cell[variant]["seconds"] if cell[variant] else None for variant in VARIANTS}

    def ratio(top, bottom):
        return top / bottom if top is not None and bottom else None

    cell["ratios"] = {
        "A/B": ratio(seconds["A"], seconds["B"]),
        "E/C": ratio(seconds["E"], seconds["C"]),
        "D/E": ratio(seconds["D"], seconds["E"]),
        "D/C": ratio(seconds["D"], seconds["C"]),
        # A is a whole command: compare it with D's whole command (interpreter and bosdyn import included).
        "D/A": ratio(cell["D"]["command_seconds"] if cell["D"] else None, seconds["A"]),
    }
    if cell["A"] and cell["B"]:
        cell["A_minus_B_kib_per_robot"] = (cell["A"]["controller_kib"] - cell["B"]["max_rss_kib"]) / robots
    return cell


def _slope(cells, key):
    """KiB per robot between the smallest and the largest fleet of one latency that has ``key``, or None."""
    cells = [cell for cell in cells if key(cell) is not None]
    if len(cells) < 2:
        return None
    low, high = cells[0], cells[-1]
    return (key(high) - key(low)) / (high["robots"] - low["robots"])


def _get(cell, variant, key):
    return cell[variant].get(key) if cell.get(variant) else None


def evaluate(report):
    """The targets of the benchmark: [(target, measured, PASS / FAIL / n/a)]."""
    targets = []
    by_latency = {entry["latency_ms"]: entry["cells"] for entry in report["latencies"]}
    file_limit = report["file_limit"]

    def verdict(ok):
        return "PASS" if ok else "FAIL"

    def cells_with(latency, *variants):
        return [cell for cell in by_latency.get(latency, []) if all(cell.get(variant) for variant in variants)]

    def at_size(name, latency, robots, variants, check, describe, condition=None):
        """One row for the cell of ``robots`` at ``latency``; n/a with the largest fleet run if there is none."""
        cells = cells_with(latency, *variants)
        exact = [cell for cell in cells if cell["robots"] == robots]
        if exact and (condition is None or condition[0]):
            targets.append((name, describe(exact[0]), verdict(check(exact[0]))))
        elif exact:
            targets.append((name, "%s, but %s" % (describe(exact[0]), condition[1]), "n/a"))
        elif cells:
            targets.append((name, "%s at %d robots" % (describe(cells[-1]), cells[-1]["robots"]), "n/a"))
        else:
            targets.append((name, "not run (%s at %g ms)" % ("+".join(variants), latency), "n/a"))

    for robots in PLAY_TARGET_ROBOTS:
        at_size("A/B <= %.1f at %d robots, loopback" % (PLAY_TARGET_RATIO, robots), 0, robots, "AB",
                lambda c: c["ratios"]["A/B"] <= PLAY_TARGET_RATIO,
                lambda c: "%.2f (A %.2f s, B %.2f s)" % (c["ratios"]["A/B"], c["A"]["seconds"], c["B"]["seconds"]))
    limited = (file_limit == LOOKUP_TARGET_FILES, "open files %s, not %d" % (file_limit or "not limited", LOOKUP_TARGET_FILES))
    big = LOOKUP_TARGET_ROBOTS
    at_size("E: every token at %d robots, %d open files" % (big, LOOKUP_TARGET_FILES), 0, big, "E",
            lambda c: c["E"]["min_tokens"] == c["robots"] and not c["E"]["problems"],
            lambda c: "%d of %d tokens%s" % (
                c["E"]["min_tokens"], c["robots"], " (%d problems)" % len(c["E"]["problems"]) if c["E"]["problems"] else ""),
            limited)
    at_size("E/C <= %.1f at %d robots, %d open files" % (LOOKUP_TARGET_RATIO, big, LOOKUP_TARGET_FILES), 0, big, "CE",
            lambda c: c["ratios"]["E/C"] <= LOOKUP_TARGET_RATIO,
            lambda c: "%.2f (E %.2f s, C %.2f s)" % (c["ratios"]["E/C"], c["E"]["seconds"], c["C"]["seconds"]), limited)
    at_size("controller memory <= %g KiB/robot, %d-robot lookup" % (MEMORY_TARGET_KIB, big), 0, big, "E",
            lambda c: c["E"]["rss_growth_kib_per_robot"] <= MEMORY_TARGET_KIB,
            lambda c: "%.1f KiB (lookup +%.1f MiB, agent peak %s MiB; wire floor C %.1f KiB)"
            % (c["E"]["rss_growth_kib_per_robot"], c["E"]["lookup_growth_kib"] / 1024.0, _fmt(_get(c, "E", "agent_hwm_kib"), "%.1f", 1024.0),
               _get(c, "C", "rss_growth_kib_per_robot") or float("nan")))
    cells = [cell for entry in report["latencies"] for cell in entry["cells"] if cell.get("E")]
    if cells:
        requests = max(cell["E"]["cached_requests"] for cell in cells)
        targets.append(("E cached makes no request (every run)", "%d requests" % requests, verdict(requests == 0)))
    at_size("E cached < %g ms per robot at %d robots" % (CACHED_TARGET_MS, big), 0, big, "E",
            lambda c: c["cached_ms_per_robot"] < CACHED_TARGET_MS,
            lambda c: "%.3f ms (%.2f s)" % (c["cached_ms_per_robot"], c["E"]["cached_seconds"]))
    # D/C is the most any client could reach against this simulator on this machine: printed next to D/E.
    at_size("D/E >= %g at %d robots, %d ms latency" % (SDK_TARGET_RATIO, SDK_TARGET_ROBOTS, SDK_TARGET_LATENCY),
            SDK_TARGET_LATENCY, SDK_TARGET_ROBOTS, "CDE", lambda c: c["ratios"]["D/E"] >= SDK_TARGET_RATIO,
            lambda c: "%.1f (D %.1f s, E %.2f s; wire floor D/C %.1f)" % (
                c["ratios"]["D/E"], c["D"]["seconds"], c["E"]["seconds"], c["ratios"]["D/C"]))
    at_size("A faster than D at %d robots, %d ms latency" % (SDK_TARGET_ROBOTS, SDK_TARGET_LATENCY), SDK_TARGET_LATENCY,
            SDK_TARGET_ROBOTS, "AD", lambda c: c["ratios"]["D/A"] > 1,
            lambda c: "D/A %.2f (A %.1f s, D cmd %.1f s)" % (c["ratios"]["D/A"], c["A"]["seconds"], c["D"]["command_seconds"]))
    name = "play memory < %g KiB per added robot (with agent)" % PLAY_MEMORY_SLOPE_KIB
    slopes = [(entry["latency_ms"], _slope(entry["cells"], lambda c: _get(c, "A", "controller_kib")),
               _slope(entry["cells"], lambda c: _get(c, "B", "max_rss_kib"))) for entry in report["latencies"]]
    slopes = [item for item in slopes if item[1] is not None]
    if slopes:
        latency, slope, floor = max(slopes, key=lambda item: item[1])
        targets.append((name, "%.1f KiB at %g ms (B %s)" % (slope, latency, _fmt(floor, "%.1f")), verdict(slope < PLAY_MEMORY_SLOPE_KIB)))
    else:
        targets.append((name, "needs two fleet sizes with A", "n/a"))
    return targets


def _fmt(value, pattern="%.3f", scale=1.0):
    return "-" if value is None else pattern % (value / scale)


def format_report(report):
    lines = []
    limit = report["file_limit"]
    lines.append("C and E workers: open files %s; C at most %d logins at once, the lookup's concurrency %d; forks %s"
                 % ("soft=hard=%d" % limit if limit else "raised towards %d" % RAISED_FILE_LIMIT, report["concurrency"],
                    report["concurrency"], report["forks"]))
    for entry in report["latencies"]:
        lines.append("")
        lines.append("latency %g ms%s: median seconds of the rounds (rnd); A, B whole command, C, D, E the logins in-process"
                     % (entry["latency_ms"], " (bare loopback)" if not entry["latency_ms"] else ""))
        header = ("%6s %3s %8s %8s %8s %8s %8s %8s %9s %6s %6s %6s %6s %9s %7s %7s %7s %8s"
                  % ("robots", "rnd", "A play", "B floor", "C wire", "D sdk", "D cmd", "E look", "E cached", "A/B", "E/C", "D/E", "D/A",
                     "ms/robot", "A MiB", "A agt", "B MiB", "E KiB/r"))
        lines.append(header)
        lines.append("-" * len(header))
        for cell in entry["cells"]:
            ratios = cell["ratios"]
            lines.append("%6d %3d %8s %8s %8s %8s %8s %8s %9s %6s %6s %6s %6s %9s %7s %7s %7s %8s" % (
                cell["robots"], cell["rounds"], _fmt(_get(cell, "A", "seconds"), "%.2f"), _fmt(_get(cell, "B", "seconds"), "%.2f"),
                _fmt(_get(cell, "C", "seconds")), _fmt(_get(cell, "D", "seconds"), "%.2f"), _fmt(_get(cell, "D", "command_seconds"), "%.2f"),
                _fmt(_get(cell, "E", "seconds")), _fmt(_get(cell, "E", "cached_seconds")), _fmt(ratios["A/B"], "%.2f"),
                _fmt(ratios["E/C"], "%.2f"), _fmt(ratios["D/E"], "%.1f"), _fmt(ratios["D/A"], "%.2f"), _fmt(cell.get("cached_ms_per_robot")),
                _fmt(_get(cell, "A", "max_rss_kib"), "%.1f", 1024.0), _fmt(_get(cell, "A", "agent_hwm_kib"), "%.1f", 1024.0),
                _fmt(_get(cell, "B", "max_rss_kib"), "%.1f", 1024.0), _fmt(_get(cell, "E", "rss_growth_kib_per_robot"), "%.1f")))
        lines.append("")
        lines.append("CPU ms per robot over the measured interval, on this side (A: ansible-playbook, its workers and the agent;"
                     " E: the lookup's process and the agent) and in the simulator; 'agt' is the agent's share")
        header = ("%6s" % "robots" + "".join("%8s %6s" % (variant + " here", "sim") for variant in VARIANTS)
                  + "%7s %7s %9s %9s" % ("A agt", "E agt", "C KiB/r", "D KiB/r"))
        lines.append(header)
        lines.append("-" * len(header))
        for cell in entry["cells"]:
            cpu = "".join("%8s %6s" % (_fmt(_get(cell, variant, "cpu_ms_per_robot"), "%.2f"), _fmt(_get(cell, variant, "simulator_cpu_ms_per_robot"), "%.2f"))
                          for variant in VARIANTS)
            rest = "%7s %7s %9s %9s" % (_fmt(_get(cell, "A", "agent_cpu_ms_per_robot"), "%.2f"), _fmt(_get(cell, "E", "agent_cpu_ms_per_robot"), "%.2f"),
                                        _fmt(_get(cell, "C", "rss_growth_kib_per_robot"), "%.1f"), _fmt(_get(cell, "D", "rss_growth_kib_per_robot"), "%.1f"))
            lines.append("%6d%s%s" % (cell["robots"], cpu, rest))
        for cell in entry["cells"]:
            robots = cell["robots"]
            if cell["A"] and cell["B"]:
                extra = {key: 1000.0 * (cell["A"][key] - cell["B"][key]) / robots for key in ("seconds", "cpu_seconds", "simulator_cpu_seconds")}
                lines.append("A minus B per robot at %d robots: %.1f ms wall, %.1f ms CPU here (of which the agent %s), %.1f ms CPU in the simulator"
                             % (robots, extra["seconds"], extra["cpu_seconds"], _fmt(_get(cell, "A", "agent_cpu_ms_per_robot"), "%.1f"),
                                extra["simulator_cpu_seconds"]))
            if cell["E"]:
                lookup = cell["E"]
                lines.append("E at %d robots: lookup process +%.1f MiB, agent peak %s MiB: %.1f KiB per robot; CPU ms per robot: lookup process "
                             "%s, agent %s, simulator %s; cache fill %.2f s; cached call %.3f s, %d requests%s"
                             % (robots, lookup["lookup_growth_kib"] / 1024.0, _fmt(lookup.get("agent_hwm_kib"), "%.1f", 1024.0),
                                lookup["rss_growth_kib_per_robot"], _fmt(lookup.get("lookup_cpu_ms_per_robot"), "%.2f"),
                                _fmt(lookup.get("agent_cpu_ms_per_robot"), "%.2f"), _fmt(lookup.get("simulator_cpu_ms_per_robot"), "%.2f"),
                                lookup["fill_seconds"], lookup["cached_seconds"], lookup["cached_requests"],
                                "; PROBLEMS: " + " | ".join(lookup["problems"]) if lookup["problems"] else ""))
        slopes = [(name, _slope(entry["cells"], key)) for name, key in (
            ("A (with agent)", lambda c: _get(c, "A", "controller_kib")), ("B", lambda c: _get(c, "B", "max_rss_kib")),
            ("C", lambda c: _get(c, "C", "rss_growth_kib")), ("E (with agent)", lambda c: _get(c, "E", "rss_growth_kib")))]
        full = [cell for cell in entry["cells"] if cell.get("A_minus_B_kib_per_robot") is not None]
        lines.append("memory per added robot (smallest to largest fleet): %s%s"
                     % (", ".join("%s %s KiB" % (name, _fmt(slope, "%.1f")) for name, slope in slopes),
                        "; A minus B at %d robots: %.1f KiB per robot" % (full[-1]["robots"], full[-1]["A_minus_B_kib_per_robot"]) if full else ""))
    lines.append("")
    lines.append("targets")
    width = max(len(target[0]) for target in report["targets"])
    measured_width = max(len(target[1]) for target in report["targets"])
    lines.append("%-*s  %-*s  %s" % (width, "target", measured_width, "measured", "result"))
    lines.append("-" * (width + measured_width + 10))
    for name, measured, result in report["targets"]:
        lines.append("%-*s  %-*s  %s" % (width, name, measured_width, measured, result))
    lines.append("")
    lines.append("total run time %.0f s" % report["run_seconds"])
    return "\n".join(lines)


def write_json(path, report):
    targets = [dict(zip(("target", "measured", "result"), target)) for target in report["targets"]]
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(dict(report, targets=targets), handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(path + ".tmp", path)


def merge_reports(paths):
    """One report from the --json files of several runs: their fleets side by side, targets evaluated again."""
    reports = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            reports.append(json.load(handle))
    limits = {report["file_limit"] for report in reports}
    if len(limits) > 1 or len({report["concurrency"] for report in reports}) > 1:
        raise SystemExit("the files were measured with different --file-limit or --concurrency: %s" % ", ".join(paths))
    cells = {}
    for report in reports:
        for entry in report["latencies"]:
            for cell in entry["cells"]:
                cells[(entry["latency_ms"], cell["robots"])] = cell
    merged = dict(reports[0], sources=[{"file": path, "argv": report.get("argv"), "complete": report.get("complete", True),
                                        "run_seconds": report["run_seconds"]} for path, report in zip(paths, reports)])
    merged["latencies"] = [{"latency_ms": latency, "cells": [cells[key] for key in sorted(cells) if key[0] == latency]}
                           for latency in sorted({key[0] for key in cells})]
    merged["forks"] = "/".join(sorted({str(report["forks"]) for report in reports}))
    merged["run_seconds"] = sum(report["run_seconds"] for report in reports)
    merged["targets"] = evaluate(merged)
    return merged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, nargs="+", default=None, help="fleet sizes for every variant (default 50 200 500)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per fleet size (default 3)")
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0, 50], help="simulated answer delays (default 0 50)")
    parser.add_argument("--latency-robots", type=int, nargs="+", default=None,
                        help="fleet sizes for every variant at the latencies other than 0 (default: those of --robots)")
    parser.add_argument("--lookup-robots", type=int, nargs="+", default=None,
                        help="further fleet sizes where only C and E run (e.g. 5000)")
    parser.add_argument("--lookup-latency-ms", type=float, nargs="+", default=[0], help="latencies of the --lookup-robots fleets (default 0)")
    parser.add_argument("--file-limit", type=int, default=None,
                        help="RLIMIT_NOFILE soft=hard for the C and E worker processes (and so the lookup's agent), e.g. 1024")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="C's bound on logins in flight and the lookup's concurrency option (default %d)" % DEFAULT_CONCURRENCY)
    parser.add_argument("--forks", type=int, default=50, help="ansible-playbook forks (default 50)")
    parser.add_argument("--quick", action="store_true", help="smoke run: %s robots, 1 round" % " and ".join(map(str, QUICK_ROBOTS)))
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--fail-on-target", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--timeout", type=float, default=600, help="seconds any one command may take (default 600)")
    parser.add_argument("--from-json", metavar="FILE", nargs="+",
                        help="measure nothing: print the tables and targets of earlier --json files, their fleets merged "
                             "(a fleet in several files: the last one wins)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--sim-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker, args.sim_dir, args.file_limit, args.concurrency)
        return 0
    if args.from_json:
        report = merge_reports(args.from_json)
        print(format_report(report))
        if args.json:
            write_json(args.json, report)
        return 1 if args.fail_on_target and any(target[2] == "FAIL" for target in report["targets"]) else 0
    robot_counts = sorted(set(args.robots or (QUICK_ROBOTS if args.quick else DEFAULT_ROBOTS)))
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = robot_counts + (args.latency_robots or []) + (args.lookup_robots or [])
    if min(sizes) < 1 or rounds < 1 or not 1 <= args.forks <= 500:
        parser.error("robots and rounds must be at least 1, forks from 1 to 500")
    if not 1 <= args.concurrency <= 10000:
        parser.error("concurrency must be from 1 to 10000")
    if args.file_limit is not None and args.file_limit < 64:
        parser.error("file limit must be at least 64")
    if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "spot", "auth")):
        parser.error("%s does not hold ansible_collections/spot/auth" % COLLECTIONS)

    started = time.perf_counter()

    def log(message):
        print(message, file=sys.stderr, flush=True)

    report = {"robots": robot_counts, "latency_robots": args.latency_robots, "lookup_robots": args.lookup_robots, "rounds": rounds,
              "forks": args.forks, "file_limit": args.file_limit, "concurrency": args.concurrency, "latencies": [],
              "variants": VARIANT_NAMES, "argv": sys.argv[1:] if argv is None else argv,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                          "load_at_start": os.getloadavg()}}
    cells = {}
    plan = cell_plan(args, robot_counts)
    for index, (latency, robots, variants) in enumerate(plan):
        results = measure(robots, latency, variants, rounds, args, log)
        cell = summarise(results, robots)
        cell["raw"] = results
        cells.setdefault(latency, []).append(cell)
        report["latencies"] = [{"latency_ms": latency, "cells": sorted(cells[latency], key=lambda c: c["robots"])} for latency in sorted(cells)]
        report["run_seconds"] = time.perf_counter() - started
        report["machine"]["load_at_end"] = os.getloadavg()
        report["targets"] = evaluate(report)
        report["complete"] = index == len(plan) - 1
        if args.json:  # after every fleet, so a run stopped half way still leaves what it measured
            write_json(args.json, report)
    print(format_report(report))
    if args.fail_on_target and any(target[2] == "FAIL" for target in report["targets"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
