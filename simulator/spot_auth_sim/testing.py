# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for tests: an in-process fleet, a fleet in a subprocess, and a raw gRPC client.

In-process (fast; robots are :class:`~spot_auth_sim.robot.SimRobot` objects)::

    from spot_auth_sim.testing import Fleet, get_auth_token
    with Fleet(robots=3, faults={"robot-002": "slow"}, lockout_seconds=1) as fleet:
        robot = fleet["robot-001"]
        response = get_auth_token(robot, username=robot.username, password=robot.password)

In a subprocess (what a playbook run sees; robots are :class:`RobotInfo` records)::

    with SubprocessFleet(robots=3, faults={"robot-2": "down"}) as fleet:
        subprocess.run(["ansible-playbook", "-i", fleet.inventory_path, "site.yml"], check=True)
        fleet.control.requests("robot-001")

As pytest fixtures (in a conftest.py)::

    fleet = fleet_fixture(robots=3)
    sim = subprocess_fleet_fixture(robots=3, scope="module")
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from typing import List, Optional

import grpc
import yaml

from . import wire
from .control import ControlClient
from .fleet import CONTROL_FILE, INVENTORY_FILE, Fleet, own_temp_dir
from .pki import AUTH_AUTHORITY
from .robot import ManualClock

__all__ = [
    "Fleet",
    "ManualClock",
    "RobotInfo",
    "SubprocessFleet",
    "auth_channel",
    "call_get_auth_token",
    "fleet_fixture",
    "get_auth_token",
    "read_inventory",
    "subprocess_fleet_fixture",
]

# Anything shaped like a token the robots mint (a JWT: JSON header and claims, then a signature), for the
# tests and scripts that search output for leaks.
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --------------------------------------------------------------------------------------------
# Raw gRPC client with the simulator's own messages


def auth_channel(port, ca_pem, host="127.0.0.1", authority=AUTH_AUTHORITY, options=()):
    """A TLS channel to a robot that trusts ``ca_pem`` and names ``authority`` (SNI and :authority)."""
    if isinstance(ca_pem, str):
        ca_pem = ca_pem.encode("ascii")
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    channel_options = [("grpc.ssl_target_name_override", authority), ("grpc.use_local_subchannel_pool", 1)]
    channel_options.extend(options)
    return grpc.secure_channel("%s:%d" % (host, port), credentials, options=channel_options)


def call_get_auth_token(channel, request, timeout=10.0, metadata=None):
    """Send one GetAuthTokenRequest; returns the response or raises grpc.RpcError."""
    method = channel.unary_unary(wire.GET_AUTH_TOKEN_PATH,
                                 request_serializer=lambda message: message.SerializeToString(),
                                 response_deserializer=wire.GetAuthTokenResponse.FromString)
    return method(request, timeout=timeout, metadata=metadata)


def get_auth_token(robot, username=None, password=None, token=None, application_token=None,
                   ca_pem=None, timeout=10.0, client_name="spot-auth-sim-tests", authority=AUTH_AUTHORITY):
    """One GetAuthToken call to ``robot`` (a SimRobot, a RobotInfo, or a port with ``ca_pem``)."""
    if isinstance(robot, int):
        port, host = robot, "127.0.0.1"
    else:
        port, host = robot.port, robot.host
        ca_pem = ca_pem if ca_pem is not None else robot.ca_pem
    request = wire.build_request(username=username, password=password, token=token,
                                 application_token=application_token, client_name=client_name)
    with auth_channel(port, ca_pem, host=host, authority=authority) as channel:
        return call_get_auth_token(channel, request, timeout=timeout)


# --------------------------------------------------------------------------------------------
# Fleet in a subprocess


@dataclasses.dataclass
class RobotInfo:
    """One host of a simulator inventory."""

    name: str
    host: str
    port: int
    serial: str
    username: str
    password: str = dataclasses.field(repr=False)
    ca_pem: bytes = dataclasses.field(repr=False, default=b"")
    ca_path: str = ""
    app_token: Optional[str] = dataclasses.field(repr=False, default=None)
    faults: List[str] = dataclasses.field(default_factory=list)


def read_inventory(path):
    """RobotInfo records of every host in a simulator ``inventory.yml``."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    group = data["all"]["children"]["spot"]
    ca_path = group["vars"]["spot_ca_cert"]
    with open(ca_path, "rb") as handle:
        ca_pem = handle.read()
    return [RobotInfo(name=name, host=host["ansible_host"], port=int(host["spot_port"]), serial=host["spot_serial"],
                      username=host["spot_username"], password=host["spot_password"], ca_pem=ca_pem,
                      ca_path=ca_path, app_token=host.get("spot_app_token"),
                      faults=list(host.get("spot_sim_faults") or []))
            for name, host in group["hosts"].items()]


def inventory_without_credentials(path):
    """A simulator ``inventory.yml`` as a controller that injects credentials holds it: no usernames, passwords or CA."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    group = data["all"]["children"]["spot"]
    for host in group["hosts"].values():
        del host["spot_username"], host["spot_password"]
    del group["vars"]["spot_ca_cert"]
    return data


class SubprocessFleet:
    """Run ``spot-auth-sim`` in a subprocess for the length of a ``with`` block.

    ``faults`` is ``{robot: fault or [faults]}``; ``args`` are further CLI options (for example
    ``["--lockout-seconds", "2"]``). Start waits at most ``start_timeout`` seconds for the
    inventory; stop sends SIGTERM, then SIGKILL after ``stop_timeout`` seconds (and the
    simulator exits by itself if this process dies: ``--watch-pid``). The
    simulator's output goes to ``sim-stdout.log`` and ``sim-stderr.log`` in ``out_dir``
    (a temporary directory, removed afterwards, unless given).
    """

    def __init__(self, robots=3, faults=None, args=(), out_dir=None, start_timeout=60.0, stop_timeout=10.0,
                 python=None, env=None):
        self.robot_count = robots
        self.faults = dict(faults or {})
        self.args = [str(a) for a in args]
        self._out_dir = out_dir
        self._own_dir = None
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.python = python or sys.executable
        self.env = env
        self.process = None
        self.robots: List[RobotInfo] = []
        self.control: Optional[ControlClient] = None
        self.startup_seconds = None
        self.returncode = None

    @property
    def out_dir(self):
        return self._out_dir or self._own_dir

    @property
    def inventory_path(self):
        return os.path.join(self.out_dir, INVENTORY_FILE)

    @property
    def ca_path(self):
        return os.path.join(self.out_dir, "ca.pem")

    @property
    def ca_pem(self):
        with open(self.ca_path, "rb") as handle:
            return handle.read()

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def command(self):
        cmd = [self.python, "-m", "spot_auth_sim", "--robots", str(self.robot_count), "--out", self.out_dir,
               "--watch-pid", str(os.getpid())]
        for robot, faults in self.faults.items():
            for fault in [faults] if isinstance(faults, str) else faults:
                cmd += ["--fault", "%s=%s" % (robot, fault)]
        return cmd + self.args

    def robot(self, name):
        for robot in self.robots:
            if robot.name == name:
                return robot
        raise KeyError(name)

    def __getitem__(self, key):
        return self.robots[key] if isinstance(key, int) else self.robot(key)

    def _log_tail(self, name, limit=2000):
        try:
            with open(os.path.join(self.out_dir, name), encoding="utf-8", errors="replace") as handle:
                return handle.read()[-limit:]
        except OSError:
            return ""

    def start(self):
        if self._out_dir is None:
            self._own_dir, self._remove_own_dir = own_temp_dir(self)
        os.makedirs(self.out_dir, exist_ok=True)
        for name in (INVENTORY_FILE, CONTROL_FILE):
            try:
                os.unlink(os.path.join(self.out_dir, name))
            except FileNotFoundError:
                pass
        env = dict(os.environ if self.env is None else self.env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
        started = time.monotonic()
        with open(os.path.join(self.out_dir, "sim-stdout.log"), "wb") as out, \
                open(os.path.join(self.out_dir, "sim-stderr.log"), "wb") as err:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                            env=env, start_new_session=True)
        deadline = started + self.start_timeout
        while not os.path.exists(self.inventory_path):
            if self.process.poll() is not None:
                self.returncode = self.process.returncode
                message = "spot-auth-sim exited with %s before it was ready:\n%s" % (
                    self.returncode, self._log_tail("sim-stderr.log"))
                self._cleanup_dir()
                raise RuntimeError(message)
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("spot-auth-sim was not ready within %.0f s" % self.start_timeout)
            time.sleep(0.05)
        self.startup_seconds = time.monotonic() - started
        self.robots = read_inventory(self.inventory_path)
        self.control = ControlClient.from_dir(self.out_dir)
        return self

    def rss_bytes(self):
        """Resident set size of the simulator process (Linux), or None."""
        try:
            with open("/proc/%d/status" % self.process.pid, encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except (OSError, AttributeError):
            return None
        return None

    def stop(self):
        """SIGTERM, then SIGKILL after ``stop_timeout``; returns the exit code."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(self.stop_timeout)
            self.returncode = process.returncode
        self._cleanup_dir()
        return self.returncode

    def _cleanup_dir(self):
        if self._own_dir is not None:
            self._remove_own_dir()
            self._own_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


# --------------------------------------------------------------------------------------------
# pytest fixtures


def fleet_fixture(scope="function", name=None, **kwargs):
    """A pytest fixture that yields a running in-process :class:`Fleet` built with ``kwargs``."""
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def _fleet():
        with Fleet(**kwargs) as fleet:
            yield fleet

    return _fleet


def subprocess_fleet_fixture(scope="function", name=None, **kwargs):
    """A pytest fixture that yields a running :class:`SubprocessFleet` built with ``kwargs``."""
    import pytest

    @pytest.fixture(scope=scope, name=name)
    def _fleet():
        with SubprocessFleet(**kwargs) as fleet:
            yield fleet

    return _fleet
