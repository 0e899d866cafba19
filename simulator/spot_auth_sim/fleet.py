# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet of simulated robots: configuration, serving over TLS, and the inventory.

All robots of a fleet share one asyncio event loop; each listening robot has its own
``grpc.aio`` server on its own port of 127.0.0.1. :class:`FleetRuntime` is the async core
(used by the CLI), :class:`Fleet` runs it on a background thread for Python tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import socket
import stat
import tempfile
import threading
import weakref
from typing import Dict, List, Optional

import grpc
import yaml

from . import pki, wire
from .robot import (
    AuthSettings,
    ApplicationTokenAuthority,
    SimRobot,
    SystemClock,
    User,
    parse_faults,
    robot_index,
    robot_name,
)

HOST = "127.0.0.1"
DEFAULT_USERNAME = "admin"
CA_FILE = "ca.pem"
INVENTORY_FILE = "inventory.yml"
CONTROL_FILE = "control.json"


OWN_DIR_PREFIX = "spot-auth-sim-"


def own_temp_dir(owner):
    """A new temporary directory removed with ``owner``: by calling the returned finalizer (its stop()),
    or at interpreter exit when it was never stopped. A process that ends without either (killed, or a
    forked test process leaving through os._exit) is caught later: its directory carries its pid, and the
    next fleet of the same user removes it once that pid is gone."""
    remove_orphaned_dirs()
    path = tempfile.mkdtemp(prefix="%s%d-" % (OWN_DIR_PREFIX, os.getpid()))
    return path, weakref.finalize(owner, shutil.rmtree, path, True)


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_orphaned_dirs(parent=None):
    """Remove this user's fleet directories in ``parent`` (the temp directory) whose process is gone."""
    parent = parent or tempfile.gettempdir()
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        pid_text = name[len(OWN_DIR_PREFIX):].split("-", 1)[0] if name.startswith(OWN_DIR_PREFIX) else ""
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _process_exists(int(pid_text)):
            continue
        path = os.path.join(parent, name)
        try:
            status = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid():
            shutil.rmtree(path, ignore_errors=True)


class FleetConfigError(ValueError):
    """The fleet description (arguments or fleet file) is not valid."""


# --------------------------------------------------------------------------------------------
# Description of a fleet


@dataclasses.dataclass
class RobotSpec:
    name: str
    serial: str
    username: str = DEFAULT_USERNAME
    password: Optional[str] = dataclasses.field(default=None, repr=False)  # None: generated
    users: list = dataclasses.field(default_factory=list, repr=False)  # extra users (dicts)
    faults: list = dataclasses.field(default_factory=list)
    legacy: bool = False
    port: int = 0  # 0: any free port


@dataclasses.dataclass
class FleetSpec:
    robots: List[RobotSpec]
    settings: AuthSettings = dataclasses.field(default_factory=AuthSettings)


_SETTING_NAMES = {f.name for f in dataclasses.fields(AuthSettings)}
_ROBOT_KEYS = {"name", "serial", "username", "password", "users", "faults", "fault", "legacy", "port"}
_FILE_KEYS = {"robots", "username", "password", "users", "faults", "legacy", "settings", "port_base"}


def default_serial(index):
    return "spot-sim-%04d" % index


def _resolve(robots, key, what):
    """The RobotSpec that ``key`` names: exact name, or the same robot number (robot-3 = robot-003)."""
    key = str(key).strip()
    for spec in robots:
        if spec.name == key:
            return spec
    index = robot_index(key)
    if index is not None:
        for spec in robots:
            if robot_index(spec.name) == index:
                return spec
    raise FleetConfigError("%s: no robot named %r in this fleet (%d robots: %s%s)" % (
        what, key, len(robots), ", ".join(s.name for s in robots[:3]), ", ..." if len(robots) > 3 else ""))


def _check_users(users, where):
    if users is None:
        return []
    if isinstance(users, dict):  # {"name": "password"} or {"name": {"password": ..., "permissions": ...}}
        items = []
        for name, value in users.items():
            items.append(dict(value, username=name) if isinstance(value, dict) else {"username": name, "password": value})
        users = items
    if not isinstance(users, list):
        raise FleetConfigError("%s: users must be a list or a mapping" % where)
    checked = []
    for user in users:
        if not isinstance(user, dict) or not user.get("username") or not user.get("password"):
            raise FleetConfigError("%s: each user needs a username and a password" % where)
        unknown = set(user) - {"username", "password", "permissions"}
        if unknown:
            raise FleetConfigError("%s: unknown user keys %s" % (where, ", ".join(sorted(unknown))))
        checked.append({"username": str(user["username"]), "password": str(user["password"]),
                        "permissions": tuple(user.get("permissions") or ("*",))})
    return checked


def _faults(value, where):
    try:
        return [str(f) for f in parse_faults(value)]
    except ValueError as exc:
        raise FleetConfigError("%s: %s" % (where, exc)) from None


def build_spec(robots=1, faults=None, legacy=(), username=DEFAULT_USERNAME, password=None, users=None,
               settings=None, port_base=0):
    """A FleetSpec from Python values (the fleet file uses the same names).

    ``robots``: a count, or a list of dicts with keys name, serial, username, password, users,
    faults (or fault), legacy, port. ``faults``: {robot: "slow" | "flaky:3" | [..]} where robot is
    a name or number (``robot-3``, ``robot-003`` and ``3`` are the same robot). ``legacy``: robots
    that need an application token. ``users``: extra users on every robot, as a list of
    {username, password, permissions} or a {username: password} mapping.
    """
    username = username or DEFAULT_USERNAME
    common_users = _check_users(users, "users")
    specs = []
    if isinstance(robots, bool) or not isinstance(robots, (int, list)):
        raise FleetConfigError("robots must be a count or a list of robot descriptions")
    if isinstance(robots, int):
        if robots < 1:
            raise FleetConfigError("a fleet needs at least one robot")
        robots = [{} for _number in range(robots)]
    width = max(3, len(str(len(robots))))
    for number, entry in enumerate(robots, 1):
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise FleetConfigError("robot #%d: expected a mapping" % number)
        unknown = set(entry) - _ROBOT_KEYS
        if unknown:
            raise FleetConfigError("robot #%d: unknown keys %s" % (number, ", ".join(sorted(unknown))))
        name = str(entry.get("name") or robot_name(number, width))
        where = "robot %s" % name
        fault_list = _faults(entry.get("faults"), where) + _faults(entry.get("fault"), where)
        port = entry.get("port") or (port_base + number - 1 if port_base else 0)
        if not isinstance(port, int) or not 0 <= port < 65536:
            raise FleetConfigError("%s: bad port %r" % (where, port))
        specs.append(RobotSpec(
            name=name,
            serial=str(entry.get("serial") or default_serial(number)),
            username=str(entry.get("username") or username),
            password=None if entry.get("password") is None else str(entry["password"]),
            users=common_users + _check_users(entry.get("users"), where),
            faults=fault_list,
            legacy=bool(entry.get("legacy", False)),
            port=port,
        ))
        if password is not None and entry.get("password") is None:
            specs[-1].password = str(password)
    for kind, values in (("name", [s.name for s in specs]), ("serial", [s.serial for s in specs])):
        if len(set(values)) != len(values):
            raise FleetConfigError("robot %ss must be unique" % kind)
    fixed_ports = [s.port for s in specs if s.port]
    if len(set(fixed_ports)) != len(fixed_ports):
        raise FleetConfigError("robot ports must be unique")
    for key, value in (faults or {}).items():
        spec = _resolve(specs, key, "fault")
        spec.faults = _faults(spec.faults + _faults(value, "fault for %s" % key), "robot %s" % spec.name)
    if isinstance(legacy, str):
        legacy = [legacy]
    for key in legacy or ():
        _resolve(specs, key, "legacy").legacy = True
    if settings is None:
        settings = AuthSettings()
    elif isinstance(settings, dict):
        unknown = set(settings) - _SETTING_NAMES
        if unknown:
            raise FleetConfigError("unknown settings %s (known: %s)" % (
                ", ".join(sorted(unknown)), ", ".join(sorted(_SETTING_NAMES))))
        settings = AuthSettings(**{name: _setting_value(name, value) for name, value in settings.items()})
    try:
        settings.validate()
    except ValueError as exc:
        raise FleetConfigError(str(exc)) from None
    return FleetSpec(robots=specs, settings=settings)


def _setting_value(name, value):
    """A setting from a file or the command line, as the number AuthSettings wants."""
    if value is None and name == "rate_burst":
        return None
    wanted = int if name in ("lockout_threshold", "record_limit") else float
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FleetConfigError("setting %s must be a number, not %r" % (name, value))
    try:
        number = float(value)
    except ValueError:
        raise FleetConfigError("setting %s must be a number, not %r" % (name, value)) from None
    if wanted is int:
        if not number.is_integer():
            raise FleetConfigError("setting %s must be a whole number, not %r" % (name, value))
        return int(number)
    return number


def load_fleet_file(path):
    """The mapping in a JSON or YAML fleet file."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise FleetConfigError("cannot read fleet file %s: %s" % (path, exc.strerror)) from None
    try:
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise FleetConfigError("fleet file %s is not valid %s: %s" % (
            path, "JSON" if str(path).endswith(".json") else "YAML", exc)) from None
    if not isinstance(data, dict):
        raise FleetConfigError("fleet file %s must hold a mapping" % path)
    unknown = set(data) - _FILE_KEYS
    if unknown:
        raise FleetConfigError("fleet file %s: unknown keys %s (known: %s)" % (
            path, ", ".join(sorted(unknown)), ", ".join(sorted(_FILE_KEYS))))
    return data


def spec_from_mapping(data, **overrides):
    """A FleetSpec from a fleet-file mapping; keyword ``overrides`` win (None means not given).

    Overrides: robots, faults (merged), legacy (added), username, password, users (added),
    port_base, and any AuthSettings field.
    """
    data = dict(data or {})
    settings = dict(data.get("settings") or {})
    for name in _SETTING_NAMES:
        if overrides.get(name) is not None:
            settings[name] = overrides[name]
    robots = overrides.get("robots") if overrides.get("robots") is not None else data.get("robots", 1)
    faults = dict(data.get("faults") or {})
    for key, value in (overrides.get("faults") or {}).items():
        faults[key] = _faults(faults.get(key), "fault") + _faults(value, "fault")
    legacy = list(data.get("legacy") or []) + list(overrides.get("legacy") or [])
    users = _check_users(data.get("users"), "users") + _check_users(overrides.get("users"), "users")

    def pick(key, default=None):
        return overrides[key] if overrides.get(key) is not None else data.get(key, default)

    return build_spec(robots=robots, faults=faults, legacy=legacy, username=pick("username", DEFAULT_USERNAME),
                      password=pick("password"), users=users, settings=settings, port_base=pick("port_base", 0) or 0)


# --------------------------------------------------------------------------------------------
# Files


def write_file_atomic(path, data, mode=0o600):
    """Write ``data`` (bytes) to ``path`` through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# --------------------------------------------------------------------------------------------
# Serving


def ensure_fd_limit(needed):
    """Raise the soft open-files limit towards the hard one when ``needed`` descriptors exceed it.

    Each robot holds a listening socket and one more per client connection; 1000 robots do
    not fit the common soft limit of 1024. Returns the soft limit in force afterwards.
    """
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def _rpc_handler(robot):
    async def get_auth_token(request, context):
        answer = robot.handle(request)
        if answer.delay > 0:
            await asyncio.sleep(answer.delay)
        if answer.grpc_code != "OK":
            await context.abort(grpc.StatusCode[answer.grpc_code], answer.details)
        return answer.finish(robot.clock.time())

    return grpc.method_handlers_generic_handler(wire.SERVICE_NAME, {
        wire.METHOD_NAME: grpc.unary_unary_rpc_method_handler(
            get_auth_token,
            request_deserializer=wire.GetAuthTokenRequest.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        ),
    })


# certificate kind (FaultKind.certificate) -> (issued by the fleet's CA?, names in the certificate)
_CERTIFICATES = {
    "good": (True, pki.ROBOT_AUTHORITIES),
    "wrong-name": (True, pki.WRONG_NAME_AUTHORITIES),
    "wrong-ca": (False, pki.ROBOT_AUTHORITIES),
}


class FleetRuntime:
    """The robots of one fleet and their servers, driven from one asyncio event loop."""

    def __init__(self, spec, clock=None):
        self.spec = spec
        self.settings = spec.settings
        self.clock = clock or SystemClock()
        self.ca = pki.CertificateAuthority()
        self.ca_pem = self.ca.cert_pem
        self.app_tokens = ApplicationTokenAuthority(self.clock)
        self.app_token = self.app_tokens.issue()
        self.expired_app_token = self.app_tokens.issue(issued_at=self.clock.time() - 7200, lifetime=3600)
        self.robots: List[SimRobot] = []
        self._by_name: Dict[str, SimRobot] = {}
        for robot_spec in spec.robots:
            password = robot_spec.password or secrets.token_urlsafe(12)
            users = [User(robot_spec.username, password)]
            users += [User(u["username"], u["password"], tuple(u["permissions"]))
                      for u in robot_spec.users if u["username"] != robot_spec.username]
            robot = SimRobot(robot_spec.name, robot_spec.serial, users, settings=self.settings,
                             faults=robot_spec.faults, legacy=robot_spec.legacy,
                             app_tokens=self.app_tokens, clock=self.clock,
                             default_username=robot_spec.username)
            robot.ca_pem = self.ca_pem
            robot.app_token = self.app_token if robot.legacy else None
            self.robots.append(robot)
            self._by_name[robot.name] = robot
        self._ports = {r.name: s.port for r, s in zip(self.robots, spec.robots)}
        self._credentials = {}
        self._servers = []
        self._reserved = []
        self.ca_path = None
        self.warnings = []

    # ---- lookup ---------------------------------------------------------------------------

    def robot(self, name):
        """The robot called ``name`` (``robot-3``, ``robot-003`` and ``3`` all work)."""
        robot = self._by_name.get(str(name))
        if robot is None:
            index = robot_index(name)
            for candidate in self.robots:
                if index is not None and robot_index(candidate.name) == index:
                    return candidate
            raise KeyError("no robot named %r" % (name,))
        return robot

    # ---- TLS ------------------------------------------------------------------------------

    def _server_credentials(self, kind):
        """Server credentials for a certificate kind; one certificate per kind, shared by its robots."""
        if kind not in self._credentials:
            own_ca, names = _CERTIFICATES[kind]
            issuer = self.ca if own_ca else pki.CertificateAuthority("Unrelated CA")
            cert = issuer.issue_server_certificate(names)
            self._credentials[kind] = grpc.ssl_server_credentials([(cert.key_pem, cert.cert_pem)])
        return self._credentials[kind]

    # ---- life cycle -----------------------------------------------------------------------

    async def start(self):
        """Bind every robot's port and start serving; on failure, undo what was started."""
        needed = 4 * len(self.robots) + 256
        limit = ensure_fd_limit(needed)
        if limit is not None and limit < needed:
            self.warnings.append("the open-files limit (%d) is low for %d robots; connections may fail "
                                 "(raise it with ulimit -n %d)" % (limit, len(self.robots), needed))
        try:
            for robot in self.robots:
                wanted = self._ports[robot.name]
                if robot.listening:
                    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
                    server.add_generic_rpc_handlers((_rpc_handler(robot),))
                    try:
                        port = server.add_secure_port("%s:%d" % (HOST, wanted),
                                                      self._server_credentials(robot.certificate_kind))
                    except RuntimeError:
                        port = 0
                    if not port:
                        raise OSError("robot %s: cannot listen on %s:%d" % (robot.name, HOST, wanted))
                    await server.start()
                    self._servers.append(server)
                else:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    try:
                        sock.bind((HOST, wanted))  # bound but never listening: connections are refused
                    except OSError as exc:
                        sock.close()
                        raise OSError("robot %s: cannot reserve %s:%d: %s" % (
                            robot.name, HOST, wanted, exc.strerror)) from None
                    self._reserved.append(sock)
                    port = sock.getsockname()[1]
                robot.port = port
                robot.host = HOST
        except BaseException:
            await self.stop(grace=0)
            raise

    async def stop(self, grace=0.5):
        servers, self._servers = self._servers, []
        if servers:
            await asyncio.gather(*(server.stop(grace) for server in servers), return_exceptions=True)
        reserved, self._reserved = self._reserved, []
        for sock in reserved:
            sock.close()

    # ---- files ----------------------------------------------------------------------------

    def write_ca(self, directory):
        path = os.path.join(os.path.abspath(directory), CA_FILE)
        write_file_atomic(path, self.ca_pem, mode=0o644)
        self.ca_path = path
        for robot in self.robots:
            robot.ca_path = path
        return path

    def inventory_data(self, ca_path):
        """The YAML inventory as a dict: group ``spot`` with one host per robot."""
        hosts = {}
        for robot in self.robots:
            host = {
                "ansible_host": robot.host,
                "spot_port": robot.port,
                "spot_username": robot.username,
                "spot_password": robot.password,
                "spot_serial": robot.serial,
            }
            if robot.legacy:
                host["spot_app_token"] = robot.app_token
            if robot.faults:
                host["spot_sim_faults"] = robot.fault_names
            hosts[robot.name] = host
        return {"all": {"children": {"spot": {
            "hosts": hosts,
            "vars": {
                "spot_ca_cert": os.path.abspath(ca_path),
                "ansible_connection": "local",
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            },
        }}}}

    def write_inventory(self, directory):
        """Write ``ca.pem`` and ``inventory.yml`` (mode 0600) into ``directory``; returns the path."""
        directory = os.path.abspath(directory)
        os.makedirs(directory, exist_ok=True)
        ca_path = os.path.join(directory, CA_FILE)
        if ca_path != self.ca_path:
            write_file_atomic(ca_path, self.ca_pem, mode=0o644)
        text = "# spot-auth-sim inventory: holds passwords, keep it private.\n" + yaml.safe_dump(
            self.inventory_data(ca_path), default_flow_style=False, sort_keys=False)
        return write_file_atomic(os.path.join(directory, INVENTORY_FILE), text.encode("utf-8"), mode=0o600)

    def describe(self):
        """A JSON-friendly description of the fleet (no passwords, no tokens)."""
        return {"robots": [robot.summary() for robot in self.robots],
                "settings": dataclasses.asdict(self.settings), "ca_path": self.ca_path}


# --------------------------------------------------------------------------------------------
# In-process fleet on a background thread


class Fleet:
    """A running fleet for Python tests: ``with Fleet(robots=3) as fleet: ...``.

    Keyword arguments are those of :func:`build_spec` plus the AuthSettings fields
    (``lockout_threshold``, ``lockout_seconds``, ``rate_limit``, ``token_lifetime``,
    ``latency_ms``, ``slow_seconds``, ``rate_burst``, ``record_limit``). ``clock`` (for example a
    :class:`~spot_auth_sim.robot.ManualClock`) drives lockouts, rate limits and token times;
    delays (``slow``, ``latency_ms``) are always real. ``out_dir`` receives ``ca.pem``
    (default: a temporary directory removed on stop). ``control=True`` also starts the
    control API and writes ``control.json``. Or pass a prepared ``spec`` (see
    :meth:`from_file`).
    """

    def __init__(self, robots=1, *, faults=None, legacy=(), username=DEFAULT_USERNAME, password=None,
                 users=None, port_base=0, clock=None, out_dir=None, control=False, spec=None,
                 start_timeout=60.0, **settings):
        unknown = set(settings) - _SETTING_NAMES
        if unknown:
            raise TypeError("unexpected keyword arguments: %s" % ", ".join(sorted(unknown)))
        if spec is None:
            spec = build_spec(robots=robots, faults=faults, legacy=legacy, username=username, password=password,
                              users=users, settings=settings, port_base=port_base)
        self.spec = spec
        self.runtime = FleetRuntime(spec, clock=clock)
        self._out_dir = out_dir
        self._own_dir = None
        self._want_control = control
        self.control_server = None
        self._start_timeout = start_timeout
        self._thread = None
        self._loop = None
        self._stop_event = None
        self._ready = threading.Event()
        self._error = None

    @classmethod
    def from_file(cls, path, **overrides):
        """A Fleet from a JSON/YAML fleet file; keyword overrides as in :func:`spec_from_mapping`."""
        kwargs = {k: overrides.pop(k) for k in ("clock", "out_dir", "control", "start_timeout") if k in overrides}
        return cls(spec=spec_from_mapping(load_fleet_file(path), **overrides), **kwargs)

    # ---- access ---------------------------------------------------------------------------

    @property
    def robots(self) -> List[SimRobot]:
        return self.runtime.robots

    def robot(self, name):
        return self.runtime.robot(name)

    def __getitem__(self, key):
        if isinstance(key, int):
            return self.runtime.robots[key]
        return self.runtime.robot(key)

    def __iter__(self):
        return iter(self.runtime.robots)

    def __len__(self):
        return len(self.runtime.robots)

    @property
    def ca_pem(self):
        return self.runtime.ca_pem

    @property
    def ca_path(self):
        return self.runtime.ca_path

    @property
    def out_dir(self):
        return self._out_dir or self._own_dir

    @property
    def clock(self):
        return self.runtime.clock

    @property
    def settings(self):
        return self.runtime.settings

    @property
    def app_token(self):
        """A valid application token for legacy robots."""
        return self.runtime.app_token

    @property
    def expired_app_token(self):
        """An application token that legacy robots answer STATUS_EXPIRED_APPLICATION_TOKEN to."""
        return self.runtime.expired_app_token

    def issue_app_token(self, lifetime=365 * 86400.0, issued_at=None):
        return self.runtime.app_tokens.issue(lifetime=lifetime, issued_at=issued_at)

    @property
    def control_address(self):
        return self.control_server.url if self.control_server else None

    def write_inventory(self, directory):
        """Write ``ca.pem`` and ``inventory.yml`` into ``directory``; returns the inventory path."""
        return self.runtime.write_inventory(directory)

    def reset(self, **kwargs):
        for robot in self.robots:
            robot.reset(**kwargs)

    # ---- life cycle -----------------------------------------------------------------------

    def start(self):
        if self._thread is not None:
            raise RuntimeError("fleet already started")
        if self._out_dir is None:
            self._own_dir, self._remove_own_dir = own_temp_dir(self)
        else:
            os.makedirs(self._out_dir, exist_ok=True)
        self.runtime.write_ca(self.out_dir)
        self._thread = threading.Thread(target=self._run, name="spot-auth-sim-fleet", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._start_timeout):
            self.stop()
            raise TimeoutError("the fleet did not start within %.0f s" % self._start_timeout)
        if self._error is not None:
            self._thread.join(10)
            self._thread = None
            self._cleanup_dir()
            raise self._error
        if self._want_control:
            from .control import ControlServer

            self.control_server = ControlServer(self.runtime)
            self.control_server.start()
            self.control_server.write_info(os.path.join(self.out_dir, CONTROL_FILE))
        return self

    def _run(self):
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the thread that called start()
            self._error = exc
            self._ready.set()

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await self.runtime.start()
        try:
            self._ready.set()
            await self._stop_event.wait()
        finally:
            await self.runtime.stop()

    def stop(self, timeout=15.0):
        if self.control_server is not None:
            self.control_server.stop()
            self.control_server = None
        if self._thread is not None:
            loop, event = self._loop, self._stop_event
            if loop is not None and event is not None:
                try:
                    loop.call_soon_threadsafe(event.set)
                except RuntimeError:  # loop already closed
                    pass
            self._thread.join(timeout)
            self._thread = None
        self._cleanup_dir()

    def _cleanup_dir(self):
        if self._own_dir is not None:
            self._remove_own_dir()
            self._own_dir = None

    def __enter__(self):
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info):
        self.stop()
