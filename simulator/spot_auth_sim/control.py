# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Control API: JSON over HTTP on 127.0.0.1, so tests can reach a fleet in another process.

The server writes its address and a random access key to ``control.json`` (mode 0600);
every request must carry ``Authorization: Bearer <key>``. Endpoints (robot names as in the
inventory; ``robot-3`` and ``3`` also work):

    GET  /v1/fleet                          fleet description and settings
    GET  /v1/robots/NAME                    one robot
    GET  /v1/robots/NAME/requests           {"count": N, "requests": [record, ...]}
    GET  /v1/robots/NAME/lockout?username=U {"failures": N, "locked": bool, "seconds_left": S}
    POST /v1/robots/NAME/password           {"username": U, "password": P, "create": false}
    POST /v1/robots/NAME/token              {"username": U, "lifetime": S, "issued_at": T} -> {"token": ...}
    POST /v1/robots/NAME/reset              {"records": true, "lockouts": true, "faults": true, "rate_limit": true}
    POST /v1/reset                          the same for every robot
    GET  /v1/app-tokens                     {"valid": ..., "expired": ...} for legacy robots

Passwords and tokens are never logged; the records never contain them.
"""

from __future__ import annotations

import hmac
import http.server
import json
import os
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request

from .fleet import CONTROL_FILE, write_file_atomic

_MAX_BODY = 64 * 1024
_RESET_FLAGS = ("records", "lockouts", "faults", "rate_limit")


class ControlError(RuntimeError):
    """The control API refused a request (``status`` is the HTTP status)."""

    def __init__(self, status, message):
        super().__init__("control API: HTTP %s: %s" % (status, message))
        self.status = status
        self.message = message


class _HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def _reset_kwargs(body):
    kwargs = {}
    for flag in _RESET_FLAGS:
        value = body.get(flag, True)
        if not isinstance(value, bool):
            raise _HttpError(400, "%s must be true or false" % flag)
        kwargs[flag] = value
    return kwargs


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "spot-auth-sim-control"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - keep the access log quiet
        pass

    # ---- plumbing -------------------------------------------------------------------------

    def _send(self, status, payload):
        body = json.dumps(payload, sort_keys=True).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise _HttpError(413, "request body too large")
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _HttpError(400, "body is not JSON") from None
        if not isinstance(body, dict):
            raise _HttpError(400, "body must be a JSON object")
        return body

    def _authorised(self):
        given = self.headers.get("Authorization", "")
        expected = "Bearer " + self.server.control_key
        return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))

    def _dispatch(self, method):
        try:
            if not self._authorised():
                raise _HttpError(401, "missing or wrong Authorization: Bearer key (see control.json)")
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/") if p]
            query = urllib.parse.parse_qs(url.query)
            body = self._body() if method == "POST" else {}
            status, payload = self._route(method, parts, query, body)
        except _HttpError as exc:
            status, payload = exc.status, {"error": exc.message}
        except Exception as exc:  # keep serving; report without echoing the request
            status, payload = 500, {"error": "%s: %s" % (type(exc).__name__, exc)}
        self._send(status, payload)

    def do_GET(self):  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802 - http.server naming
        self._dispatch("POST")

    # ---- routes ---------------------------------------------------------------------------

    def _robot(self, name):
        try:
            return self.server.fleet.robot(name)
        except KeyError:
            raise _HttpError(404, "no robot named %r" % name) from None

    def _route(self, method, parts, query, body):
        fleet = self.server.fleet
        if not parts or parts[0] != "v1":
            raise _HttpError(404, "unknown path")
        parts = parts[1:]
        if method == "GET" and parts == ["fleet"]:
            return 200, fleet.describe()
        if method == "GET" and parts == ["app-tokens"]:
            return 200, {"valid": fleet.app_token, "expired": fleet.expired_app_token}
        if method == "POST" and parts == ["reset"]:
            kwargs = _reset_kwargs(body)
            for robot in fleet.robots:
                robot.reset(**kwargs)
            return 200, {"ok": True}
        if len(parts) >= 2 and parts[0] == "robots":
            robot = self._robot(parts[1])
            action = parts[2:]
            if method == "GET" and not action:
                return 200, robot.summary()
            if method == "GET" and action == ["requests"]:
                return 200, {"count": robot.request_count, "requests": [r.as_dict() for r in robot.requests]}
            if method == "GET" and action == ["lockout"]:
                username = (query.get("username") or [robot.username])[0]
                return 200, dict(robot.lockout_status(username), username=username)
            if method == "POST" and action == ["password"]:
                username, password = body.get("username", robot.username), body.get("password")
                if not isinstance(username, str) or not isinstance(password, str) or not password:
                    raise _HttpError(400, "needs a username and a non-empty password")
                try:
                    generation = robot.set_password(username, password, create=bool(body.get("create", False)))
                except KeyError:
                    raise _HttpError(404, "robot %s has no user %r" % (robot.name, username)) from None
                return 200, {"ok": True, "username": username, "generation": generation}
            if method == "POST" and action == ["token"]:
                username = body.get("username") or robot.username
                if username not in robot.usernames:
                    raise _HttpError(404, "robot %s has no user %r" % (robot.name, username))
                try:
                    token = robot.mint_token(username, lifetime=body.get("lifetime"), issued_at=body.get("issued_at"))
                except (TypeError, ValueError):
                    raise _HttpError(400, "lifetime and issued_at must be numbers") from None
                return 200, {"token": token}
            if method == "POST" and action == ["reset"]:
                robot.reset(**_reset_kwargs(body))
                return 200, {"ok": True}
        raise _HttpError(404 if method in ("GET", "POST") else 405, "unknown path")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class ControlServer:
    """The control API of a :class:`~spot_auth_sim.fleet.FleetRuntime`, on a thread."""

    def __init__(self, fleet, host="127.0.0.1", port=0, key=None):
        self.fleet = fleet
        self.key = key or secrets.token_urlsafe(24)
        self._httpd = _Server((host, port), _Handler)
        self._httpd.fleet = fleet
        self._httpd.control_key = self.key
        self._thread = None

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return "http://%s:%d" % (host, port)

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="spot-auth-sim-control", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()

    def info(self):
        return {"url": self.url, "key": self.key, "pid": os.getpid()}

    def write_info(self, path):
        write_file_atomic(path, json.dumps(self.info(), indent=2).encode("utf-8") + b"\n", mode=0o600)
        return path


class ControlClient:
    """A small client for the control API: ``ControlClient.from_dir(out_dir).requests("robot-001")``."""

    def __init__(self, url, key, timeout=10.0):
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout

    @classmethod
    def from_file(cls, path, timeout=10.0):
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
        return cls(info["url"], info["key"], timeout=timeout)

    @classmethod
    def from_dir(cls, directory, timeout=10.0):
        return cls.from_file(os.path.join(directory, CONTROL_FILE), timeout=timeout)

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", "Bearer " + self.key)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read().decode("utf-8")).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            raise ControlError(exc.code, message) from None

    @staticmethod
    def _name(robot):
        return urllib.parse.quote(str(robot), safe="")

    def fleet(self):
        return self._call("GET", "/v1/fleet")

    def robot(self, robot):
        return self._call("GET", "/v1/robots/%s" % self._name(robot))

    def requests(self, robot):
        """``{"count": N, "requests": [record dicts]}`` of one robot."""
        return self._call("GET", "/v1/robots/%s/requests" % self._name(robot))

    def lockout(self, robot, username=None):
        query = "" if username is None else "?" + urllib.parse.urlencode({"username": username})
        return self._call("GET", "/v1/robots/%s/lockout%s" % (self._name(robot), query))

    def set_password(self, robot, username, password, create=False):
        return self._call("POST", "/v1/robots/%s/password" % self._name(robot),
                          {"username": username, "password": password, "create": create})

    def mint_token(self, robot, username=None, lifetime=None, issued_at=None):
        body = {k: v for k, v in (("username", username), ("lifetime", lifetime), ("issued_at", issued_at))
                if v is not None}
        return self._call("POST", "/v1/robots/%s/token" % self._name(robot), body)["token"]

    def reset(self, robot=None, records=True, lockouts=True, faults=True, rate_limit=True):
        body = {"records": records, "lockouts": lockouts, "faults": faults, "rate_limit": rate_limit}
        path = "/v1/reset" if robot is None else "/v1/robots/%s/reset" % self._name(robot)
        return self._call("POST", path, body)

    def app_tokens(self):
        return self._call("GET", "/v1/app-tokens")
