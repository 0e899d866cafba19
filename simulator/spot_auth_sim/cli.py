# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``spot-auth-sim``: run a fleet of simulated Spot robots until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import textwrap
import time

from . import __version__
from .fleet import (
    CONTROL_FILE,
    INVENTORY_FILE,
    FleetConfigError,
    FleetRuntime,
    load_fleet_file,
    spec_from_mapping,
)
from .robot import FAULTS, AuthSettings

PROG = "spot-auth-sim"
_DEFAULTS = AuthSettings()


def _fault_table():
    width = max(len(name) for name in FAULTS) + 6
    lines = []
    for kind in FAULTS.values():
        label = kind.name + (":" + kind.param_help if kind.param_help else "")
        lines.append("  %-*s %s" % (width, label, kind.summary))
    return "\n".join(lines)


def _epilog():
    return "\n".join([
        "faults (--fault ROBOT=FAULT, repeatable; ROBOT is robot-003, robot-3 or 3):",
        _fault_table(),
        "",
        textwrap.dedent("""\
        files written to --out DIR once every robot is listening:
          ca.pem          the simulator's own CA (trust it instead of the Boston Dynamics root)
          control.json    address and key of the control API (mode 0600)
          inventory.yml   Ansible inventory, group 'spot' (mode 0600: it holds passwords)

        Robots serve TLS on 127.0.0.1; connect with grpc.ssl_target_name_override=auth.spot.robot.
        Each robot has user 'admin' (or --username) with a random password unless --password is
        given; read it from inventory.yml.

        example:
          spot-auth-sim --robots 5 --out /tmp/fleet --fault robot-2=slow --fault robot-4=flaky:3
          ansible-playbook -i /tmp/fleet/inventory.yml site.yml"""),
    ])


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=textwrap.dedent("""\
            Run simulated Spot robots that answer /bosdyn.api.AuthService/GetAuthToken over TLS,
            with the real robot's lockout, rate limit and token rules, and optional faults.
            Prints one line when every robot listens; runs until SIGINT or SIGTERM (exit 0)."""),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--robots", "-n", type=int, metavar="N",
                       help="number of robots, named robot-001, robot-002, ... (default 1, or the fleet file's)")
    fleet.add_argument("--out", "-o", required=True, metavar="DIR",
                       help="directory for ca.pem, control.json and inventory.yml (created if missing)")
    fleet.add_argument("--fleet", metavar="FILE",
                       help="JSON or YAML fleet file (robots, users, faults, legacy robots, settings); "
                            "command-line options win over it")
    fleet.add_argument("--fault", action="append", default=[], metavar="ROBOT=FAULT[:PARAM]",
                       help="give a robot a fault (repeatable), e.g. robot-3=slow or robot-2=flaky:2")
    fleet.add_argument("--legacy", action="append", default=[], metavar="ROBOT",
                       help="make a robot a pre-4.0 one that also demands an application token "
                            "(repeatable; the inventory gives it as spot_app_token)")
    fleet.add_argument("--username", metavar="USER", help="user on every robot (default admin)")
    fleet.add_argument("--password", metavar="PASSWORD",
                       help="that user's password on every robot (default: $SPOT_AUTH_SIM_PASSWORD, "
                            "else a random one per robot, written to the inventory)")
    fleet.add_argument("--port-base", type=int, metavar="PORT",
                       help="robot N listens on PORT+N-1 (default: any free ports)")
    fleet.add_argument("--control-port", type=int, default=0, metavar="PORT",
                       help="port of the control API on 127.0.0.1 (default: any free port)")
    fleet.add_argument("--watch-pid", type=int, metavar="PID",
                       help="also stop (exit 0) when process PID is gone, e.g. the test run that started it")
    behaviour = parser.add_argument_group("robot behaviour (defaults are the real robot's)")
    behaviour.add_argument("--lockout-threshold", type=int, metavar="N",
                           help="consecutive failed logins that lock a user out (default %d; 0 disables)"
                                % _DEFAULTS.lockout_threshold)
    behaviour.add_argument("--lockout-seconds", type=float, metavar="S",
                           help="how long a lockout lasts (default %g)" % _DEFAULTS.lockout_seconds)
    behaviour.add_argument("--rate-limit", type=float, metavar="R",
                           help="requests per second per robot before HTTP 429 answers (default %g; 0 disables)"
                                % _DEFAULTS.rate_limit)
    behaviour.add_argument("--token-lifetime", type=float, metavar="S",
                           help="lifetime of user tokens in seconds (default %g, 12 h)" % _DEFAULTS.token_lifetime)
    behaviour.add_argument("--latency-ms", type=float, metavar="MS",
                           help="delay added to every answer, e.g. 30 for Wi-Fi, 150 for LTE (default 0)")
    behaviour.add_argument("--slow-seconds", type=float, metavar="S",
                           help="delay of the 'slow' fault (default %g)" % _DEFAULTS.slow_seconds)
    return parser


def _parse_fault_args(parser, values):
    faults = {}
    for value in values:
        robot, sep, fault = value.partition("=")
        if not sep or not robot.strip() or not fault.strip():
            parser.error("--fault wants ROBOT=FAULT, e.g. robot-3=slow (got %r)" % value)
        faults.setdefault(robot.strip(), []).append(fault.strip())
    return faults


def _remove_stale(out_dir):
    for name in (INVENTORY_FILE, CONTROL_FILE):
        try:
            os.unlink(os.path.join(out_dir, name))
        except FileNotFoundError:
            pass


async def _watch(pid, stop):
    while not stop.is_set():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop.set()
            return
        except PermissionError:  # exists, owned by someone else
            pass
        await asyncio.sleep(1.0)


async def _serve(runtime, out_dir, control_port, watch_pid=None):
    from .control import ControlServer

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    watcher = loop.create_task(_watch(watch_pid, stop)) if watch_pid else None
    started = time.monotonic()
    control = None
    await runtime.start()
    for warning in runtime.warnings:
        print("%s: warning: %s" % (PROG, warning), file=sys.stderr, flush=True)
    try:
        runtime.write_ca(out_dir)
        control = ControlServer(runtime, port=control_port).start()
        control.write_info(os.path.join(out_dir, CONTROL_FILE))
        inventory = runtime.write_inventory(out_dir)
        down = sum(1 for robot in runtime.robots if not robot.listening)
        print("%s: %d robots ready in %.1f s%s, inventory %s" % (
            PROG, len(runtime.robots), time.monotonic() - started,
            " (%d down)" % down if down else "", inventory), flush=True)
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        if control is not None:
            control.stop()
            try:
                os.unlink(os.path.join(out_dir, CONTROL_FILE))
            except FileNotFoundError:
                pass
        await runtime.stop()


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.robots is not None and args.robots < 1:
        parser.error("--robots must be at least 1")
    out_dir = os.path.abspath(args.out)
    try:
        data = load_fleet_file(args.fleet) if args.fleet else {}
        spec = spec_from_mapping(
            data,
            robots=args.robots,
            faults=_parse_fault_args(parser, args.fault),
            legacy=args.legacy,
            username=args.username,
            password=args.password or os.environ.get("SPOT_AUTH_SIM_PASSWORD") or None,
            port_base=args.port_base,
            lockout_threshold=args.lockout_threshold,
            lockout_seconds=args.lockout_seconds,
            rate_limit=args.rate_limit,
            token_lifetime=args.token_lifetime,
            latency_ms=args.latency_ms,
            slow_seconds=args.slow_seconds,
        )
    except FleetConfigError as exc:
        parser.error(str(exc))
    try:
        os.makedirs(out_dir, exist_ok=True)
        _remove_stale(out_dir)
    except OSError as exc:
        print("%s: cannot use %s: %s" % (PROG, out_dir, exc.strerror), file=sys.stderr)
        return 1
    try:
        runtime = FleetRuntime(spec)
        asyncio.run(_serve(runtime, out_dir, args.control_port, args.watch_pid))
    except KeyboardInterrupt:  # interrupted before the signal handlers were in place
        return 0
    except OSError as exc:
        print("%s: %s" % (PROG, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
