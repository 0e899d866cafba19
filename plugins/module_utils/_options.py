# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The options of spot.auth.token, declared once for the module, the action plugin and the lookup.

``OPTION_SPEC`` is the Ansible argument spec; ``HOST_VARS`` names the inventory variables each
option falls back to (the names the simulator's inventory uses); ``settings_from`` checks a dict of
raw values and turns it into ``AuthSettings`` or raises ``InvalidOptionError`` naming the option.
No message built here contains a secret's value.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int
from ansible_collections.spot.auth.plugins.module_utils import _client
from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidOptionError
from ansible_collections.spot.auth.plugins.module_utils._token_cache import DEFAULT_MARGIN as DEFAULT_CACHE_MARGIN
from ansible_collections.spot.auth.plugins.module_utils._token_cache import TokenCache, entry_name

SECRET_OPTIONS = ("password", "token", "app_token")
ENV_FALLBACKS = {"username": "BOSDYN_CLIENT_USERNAME", "password": "BOSDYN_CLIENT_PASSWORD", "session": "SPOT_AUTH_SESSION"}
HOST_VARS = {
    "hostname": "ansible_host",
    "port": "spot_port",
    "username": "spot_username",
    "password": "spot_password",
    "app_token": "spot_app_token",
    "ca_cert": "spot_ca_cert",
    "validate_certs": "spot_validate_certs",
    "authority": "spot_authority",
    "serial": "spot_serial",
    "token_cache": "spot_token_cache",
}

OPTION_SPEC = {
    "hostname": {"type": "str"},
    "port": {"type": "int", "default": _client.DEFAULT_PORT},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "token": {"type": "str", "no_log": True},
    "app_token": {"type": "str", "no_log": True},
    "ca_cert": {"type": "path"},
    "validate_certs": {"type": "bool", "default": True},
    "authority": {"type": "str", "default": _client.DEFAULT_AUTHORITY},
    "timeout": {"type": "float", "default": _client.DEFAULT_TIMEOUT},
    "retries": {"type": "int", "default": _client.DEFAULT_RETRIES},
    "client_name": {"type": "str"},
    "serial": {"type": "str"},
    "token_cache": {"type": "path"},
    "token_cache_margin": {"type": "int", "default": DEFAULT_CACHE_MARGIN, "no_log": False},
    "session": {"type": "bool", "default": True},
}
MUTUALLY_EXCLUSIVE = [("password", "token")]

MAX_TIMEOUT = 600.0
MAX_CACHE_MARGIN = 43200
MAX_RETRIES = 10
MAX_SECRET_LENGTH = 16384
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$")
_IPV6 = re.compile(r"^\[?[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\]?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class AuthSettings:
    """Validated options of one handshake. ``repr`` never shows a secret."""

    __slots__ = tuple(OPTION_SPEC)

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))

    def __repr__(self):
        shown = ("%s=%r" % (name, getattr(self, name)) for name in self.__slots__ if name not in SECRET_OPTIONS)
        return "AuthSettings(%s)" % ", ".join(shown)

    @property
    def method(self):
        return "token" if self.token else "password"

    def secrets(self):
        return tuple(getattr(self, name) for name in SECRET_OPTIONS if getattr(self, name))

    def cache(self):
        """The ``TokenCache`` of ``token_cache``, or None."""
        return TokenCache(self.token_cache) if self.token_cache else None

    @property
    def cache_entry(self):
        return entry_name(self.username, self.hostname, self.port, self.serial)

    def client(self):
        """An ``AuthClient`` for these settings."""
        roots = _client.read_ca_bundle(self.ca_cert) if self.ca_cert else None
        return _client.AuthClient(
            self.hostname, self.port, root_certificates=roots, validate_certs=self.validate_certs,
            authority=self.authority, timeout=self.timeout, retries=self.retries, client_name=self.client_name)


def _convert(name, value, checker, expected):
    try:
        return checker(value)
    except (TypeError, ValueError):
        raise InvalidOptionError(name, "expected %s, got %s" % (expected, _describe(name, value))) from None


def _describe(name, value):
    """How a bad value is shown in a message: secrets only by type and length."""
    if name in SECRET_OPTIONS:
        return "a value of type %s" % type(value).__name__
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _string(name, value, max_length=1024, allow_control=False):
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidOptionError(name, "expected a string, got %s" % _describe(name, value))
    if len(value) > max_length:
        raise InvalidOptionError(name, "expected at most %d characters, got %d" % (max_length, len(value)))
    if not allow_control and _CONTROL.search(value):
        raise InvalidOptionError(name, "must not contain control characters")
    return value


def _host_name(name, value, required):
    value = _string(name, value, max_length=253)
    if value is None or value == "":
        if required:
            raise InvalidOptionError(name, "expected a robot's DNS name or IP address, got nothing")
        return None
    if not (_DNS_NAME.match(value) or (":" in value and _IPV6.match(value))):
        raise InvalidOptionError(name, "expected a DNS name or IP address, got %s" % _describe(name, value))
    return value.strip("[]") if ":" in value else value


def settings_from(params):
    """Validate raw option values (after defaults and fallbacks) into ``AuthSettings``."""
    unknown = sorted(set(params) - set(OPTION_SPEC))
    if unknown:
        raise InvalidOptionError(unknown[0], "unsupported option; supported options are %s" % ", ".join(sorted(OPTION_SPEC)))
    values = {}
    for name, spec in OPTION_SPEC.items():
        value = params.get(name)
        values[name] = spec.get("default") if value is None else value

    for name in SECRET_OPTIONS:
        values[name] = _string(name, values[name], max_length=MAX_SECRET_LENGTH, allow_control=False) or None
    values["username"] = _string("username", values["username"], max_length=256) or None
    values["client_name"] = _string("client_name", values["client_name"], max_length=256) or None
    serial = values["serial"]
    if isinstance(serial, int) and not isinstance(serial, bool):
        serial = str(serial)  # a serial written as a number in the inventory
    values["serial"] = _string("serial", serial, max_length=128) or None
    values["hostname"] = _host_name("hostname", values["hostname"], required=True)
    values["authority"] = _host_name("authority", values["authority"], required=True)

    port = _convert("port", values["port"], check_type_int, "an integer from 1 to 65535")
    if isinstance(values["port"], bool) or not 1 <= port <= 65535:
        raise InvalidOptionError("port", "expected an integer from 1 to 65535, got %s" % _describe("port", values["port"]))
    values["port"] = port

    timeout = _convert("timeout", values["timeout"], check_type_float, "a number of seconds")
    if isinstance(values["timeout"], bool) or not 0 < timeout <= MAX_TIMEOUT:
        raise InvalidOptionError("timeout", "expected seconds greater than 0 and at most %d, got %s"
                                 % (MAX_TIMEOUT, _describe("timeout", values["timeout"])))
    values["timeout"] = timeout

    retries = _convert("retries", values["retries"], check_type_int, "a whole number")
    if isinstance(values["retries"], bool) or not 0 <= retries <= MAX_RETRIES:
        raise InvalidOptionError("retries", "expected a whole number from 0 to %d, got %s"
                                 % (MAX_RETRIES, _describe("retries", values["retries"])))
    values["retries"] = retries

    values["validate_certs"] = _convert("validate_certs", values["validate_certs"], check_type_bool, "a boolean")
    values["session"] = _convert("session", values["session"], check_type_bool, "a boolean")

    margin = _convert("token_cache_margin", values["token_cache_margin"], check_type_int, "a whole number of seconds")
    if isinstance(values["token_cache_margin"], bool) or not 0 <= margin <= MAX_CACHE_MARGIN:
        raise InvalidOptionError("token_cache_margin", "expected seconds from 0 to %d, got %s"
                                 % (MAX_CACHE_MARGIN, _describe("token_cache_margin", values["token_cache_margin"])))
    values["token_cache_margin"] = margin
    if values["token_cache"] is not None:
        values["token_cache"] = os.path.expanduser(_string("token_cache", values["token_cache"], max_length=4096))

    if values["ca_cert"] is not None:
        path = _string("ca_cert", values["ca_cert"], max_length=4096)
        values["ca_cert"] = os.path.expanduser(path)
        _client.read_ca_bundle(values["ca_cert"])  # fail now, before any network call

    if values["password"] and values["token"]:
        raise InvalidOptionError("token", "password and token are mutually exclusive: re-mint with token, or log in with password")
    if not values["password"] and not values["token"]:
        raise InvalidOptionError("password", "expected a password (or BOSDYN_CLIENT_PASSWORD), or a token to re-mint")
    if values["password"] and not values["username"]:
        raise InvalidOptionError("username", "a password needs a username (or BOSDYN_CLIENT_USERNAME)")
    return AuthSettings(**values)


def apply_fallbacks(params, host_vars=None, environ=None):
    """Fill options the task left unset: inventory variables first, then the SDK's environment variables."""
    merged = dict(params)
    reminting = merged.get("token") is not None
    for name, var_name in (HOST_VARS if host_vars else {}).items():
        # A token given for re-minting must not be paired with a password from elsewhere.
        if merged.get(name) is None and host_vars.get(var_name) is not None and not (reminting and name == "password"):
            merged[name] = host_vars[var_name]
    environ = os.environ if environ is None else environ
    for name, env_name in ENV_FALLBACKS.items():
        if merged.get(name) is None and environ.get(env_name) and not (reminting and name == "password"):
            merged[name] = environ[env_name]
    return merged
