# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The options of spot.auth.token, declared once for the module, the action plugin and the lookup.

``OPTION_SPEC`` is the Ansible argument spec; ``OPTION_SOURCES`` says where an option the task does
not set is found (an inventory variable, an environment variable, a key of ansible.cfg's
``[spot_auth]`` section); ``apply_fallbacks`` fills them in, and ``settings_from`` is the one parser:
it checks raw values (as YAML, Jinja, the environment or ansible.cfg gave them) and turns them into
``AuthSettings``, or raises ``InvalidOptionError`` naming the option. Every front end (action plugin,
module, lookup) goes through it, so all of them accept and refuse the same values. No message built
here contains a secret's value: a bad secret is described by its type only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence, Set

from ansible.module_utils.common.validation import check_type_bool, check_type_float, check_type_int
from ansible_collections.spot.auth.plugins.module_utils import _client, _refusals
from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidOptionError
from ansible_collections.spot.auth.plugins.module_utils._token_cache import DEFAULT_MARGIN as DEFAULT_CACHE_MARGIN
from ansible_collections.spot.auth.plugins.module_utils._token_cache import TokenCache, entry_name

SECRET_OPTIONS = ("password", "token", "app_token")
# Where an option the task leaves unset comes from, in this order: the inventory variable ("var"), the
# environment variable ("env"), the key of ansible.cfg's [spot_auth] section ("ini"; never a secret).
OPTION_SOURCES = {
    "hostname": {"var": "ansible_host"},
    "port": {"var": "spot_port", "ini": "port"},
    "username": {"var": "spot_username", "env": "BOSDYN_CLIENT_USERNAME"},
    "password": {"var": "spot_password", "env": "BOSDYN_CLIENT_PASSWORD"},
    "app_token": {"var": "spot_app_token"},
    "ca_cert": {"var": "spot_ca_cert", "ini": "ca_cert"},
    "validate_certs": {"var": "spot_validate_certs", "ini": "validate_certs"},
    "authority": {"var": "spot_authority", "ini": "authority"},
    "timeout": {"ini": "timeout"},
    "retries": {"ini": "retries"},
    "client_name": {"ini": "client_name"},
    "serial": {"var": "spot_serial"},
    "token_cache": {"var": "spot_token_cache", "ini": "token_cache"},
    "token_cache_margin": {"ini": "token_cache_margin"},
    "refusal_ttl": {"ini": "refusal_ttl"},
    "session": {"env": "SPOT_AUTH_SESSION", "ini": "session"},
}
HOST_VARS = {name: where["var"] for name, where in OPTION_SOURCES.items() if "var" in where}
CONFIG_KEYS = {name: where["ini"] for name, where in OPTION_SOURCES.items() if "ini" in where}

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
    "refusal_ttl": {"type": "int", "default": _refusals.DEFAULT_TTL},
    "token_cache_mode": {"type": "str", "default": "use", "choices": ["use", "refresh", "refusals_only"], "no_log": False},
    "session": {"type": "bool", "default": True},
}
MUTUALLY_EXCLUSIVE = [("password", "token")]
ON_ERROR_CHOICES = ("fail", "warn", "skip")
DEFAULT_CONCURRENCY = 200
MAX_CONCURRENCY = 10000

MAX_TIMEOUT = 600.0
MAX_CACHE_MARGIN = 43200
MAX_RETRIES = 10
MAX_SECRET_LENGTH = 16384
_DNS_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$")
_NUMERIC_NAME = re.compile(r"^[0-9.]+$")
_PORT_SUFFIX = re.compile(r"^:[0-9]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUOTE_HINT = " (quote it in YAML, so that it stays text)"


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
    def reads_cache(self):
        """Whether a cached token may be served or re-minted (``token_cache_mode`` use)."""
        return bool(self.token_cache) and self.token_cache_mode == "use"

    @property
    def writes_cache(self):
        """Whether a token obtained goes to the cache (``token_cache_mode`` use or refresh)."""
        return bool(self.token_cache) and self.token_cache_mode != "refusals_only"

    def refusal_memory(self):
        """The ``RefusalMemory`` of this robot and user in ``token_cache``, or None (no cache, or ``refusal_ttl`` 0)."""
        if not self.token_cache or not self.refusal_ttl:
            return None
        return _refusals.RefusalMemory(self.cache().refusal_path(self.cache_entry), self.refusal_ttl)

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
    """How a bad value is shown in a message: a secret only by its type."""
    if name in SECRET_OPTIONS:
        return "a value of type %s" % _type_name(value)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(value):
    """The plain YAML-ish type of ``value``: Ansible wraps values in types of its own (tagged, lazy)."""
    for kind in (bool, int, float, str, bytes):
        if isinstance(value, kind):
            return kind.__name__
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, (Sequence, Set)):
        return "list"
    return type(value).__name__


def _string(name, value, max_length=1024, allow_control=False):
    if value is None:
        return None
    if not isinstance(value, str):
        hint = _QUOTE_HINT if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise InvalidOptionError(name, "expected a string, got %s%s" % (_describe(name, value), hint))
    if len(value) > max_length:
        raise InvalidOptionError(name, "expected at most %d characters, got %d" % (max_length, len(value)))
    if not allow_control and _CONTROL.search(value):
        raise InvalidOptionError(name, "must not contain control characters")
    return value


def _boolean(name, value):
    # Strict: only the spellings Ansible's modules accept; 'ture' is an error, never false.
    if isinstance(value, bool):
        return value
    if not isinstance(value, (str, int, float)):
        raise InvalidOptionError(name, "expected a boolean (true or false), got %s" % _describe(name, value))
    return _convert(name, value.strip() if isinstance(value, str) else value, check_type_bool, "a boolean (true or false)")


def _whole_number(name, value, lowest, highest, unit=""):
    expected = "a whole number%s from %d to %d" % (unit, lowest, highest)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidOptionError(name, "expected %s, got %s" % (expected, _describe(name, value)))
    number = _convert(name, value, check_type_int, expected)
    if not lowest <= number <= highest:
        raise InvalidOptionError(name, "expected %s, got %s" % (expected, _describe(name, value)))
    return number


def _address(name, value, required):
    """A DNS name or an IP address without a port; an IPv6 address bare or in brackets (returned bare)."""
    value = _string(name, value, max_length=253)
    if value is None or value == "":
        if required:
            raise InvalidOptionError(name, "expected a robot's DNS name or IP address, got nothing")
        return None
    malformed = InvalidOptionError(name, "expected a DNS name, an IPv4 address or an IPv6 address (bare or in brackets), "
                                   "got %s" % _describe(name, value))
    with_port = InvalidOptionError(name, "expected a name or address without a port, got %s; give the port in the port "
                                   "option" % _describe(name, value))
    if value.startswith("["):
        inner, closed, rest = value[1:].partition("]")
        if closed and _PORT_SUFFIX.match(rest):
            raise with_port
        if not closed or rest or not _is_ip(inner, 6):
            raise malformed
        return inner
    if value.count(":") == 1 and _PORT_SUFFIX.match(value[value.index(":"):]):
        raise with_port
    if ":" in value or "]" in value:
        if not _is_ip(value, 6):
            raise malformed
        return value
    if _NUMERIC_NAME.match(value):
        if not _is_ip(value, 4):
            raise InvalidOptionError(name, "expected a valid IPv4 address, got %s" % _describe(name, value))
        return value
    if not _DNS_NAME.match(value):
        raise malformed
    return value


def _is_ip(text, version):
    try:
        return ipaddress.ip_address(text).version == version
    except ValueError:
        return False


def _seconds(name, value, highest):
    expected = "a number of seconds greater than 0 and at most %d" % highest
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidOptionError(name, "expected %s, got %s" % (expected, _describe(name, value)))
    seconds = _convert(name, value, check_type_float, expected)
    if not 0 < seconds <= highest:  # NaN fails this too
        raise InvalidOptionError(name, "expected %s, got %s" % (expected, _describe(name, value)))
    return seconds


def _path(name, value):
    path = _string(name, value, max_length=4096)
    return os.path.expanduser(path) if path else None


def settings_from(params, runs_here=True):
    """Validate raw option values (after defaults and fallbacks) into ``AuthSettings``.

    ``runs_here=False`` is for a handshake that runs on another host (a delegate): everything is
    checked but the CA file and the presence of credentials, which may be that host's own.
    """
    unknown = sorted(set(params) - set(OPTION_SPEC))
    if unknown:
        raise InvalidOptionError(unknown[0], "unsupported option; supported options are %s" % ", ".join(sorted(OPTION_SPEC)))
    values = {}
    for name, spec in OPTION_SPEC.items():
        value = params.get(name)
        values[name] = spec.get("default") if value is None else value

    for name in SECRET_OPTIONS:
        values[name] = _string(name, values[name], max_length=MAX_SECRET_LENGTH) or None
    values["username"] = _string("username", values["username"], max_length=256) or None
    values["client_name"] = _string("client_name", values["client_name"], max_length=256) or None
    serial = values["serial"]
    if isinstance(serial, int) and not isinstance(serial, bool):
        serial = str(serial)  # a serial written as a number in the inventory
    values["serial"] = _string("serial", serial, max_length=128) or None
    values["hostname"] = _address("hostname", values["hostname"], required=True)
    values["authority"] = _address("authority", values["authority"], required=True)
    values["port"] = _whole_number("port", values["port"], 1, 65535)
    values["timeout"] = _seconds("timeout", values["timeout"], MAX_TIMEOUT)
    values["retries"] = _whole_number("retries", values["retries"], 0, MAX_RETRIES)
    values["token_cache_margin"] = _whole_number("token_cache_margin", values["token_cache_margin"], 0, MAX_CACHE_MARGIN,
                                                 unit=" of seconds")
    values["refusal_ttl"] = _whole_number("refusal_ttl", values["refusal_ttl"], 0, _refusals.MAX_TTL, unit=" of seconds")
    values["token_cache_mode"] = _choice("token_cache_mode", values["token_cache_mode"], OPTION_SPEC["token_cache_mode"]["choices"])
    values["validate_certs"] = _boolean("validate_certs", values["validate_certs"])
    values["session"] = _boolean("session", values["session"])
    values["token_cache"] = _path("token_cache", values["token_cache"])
    values["ca_cert"] = _path("ca_cert", values["ca_cert"])
    if values["password"] and values["token"]:
        raise InvalidOptionError("token", "password and token are mutually exclusive: re-mint with token, or log in with password")
    if not runs_here:
        return AuthSettings(**values)
    if values["ca_cert"] is not None:
        _client.read_ca_bundle(values["ca_cert"])  # fail now, before any network call
    if not values["password"] and not values["token"]:
        raise InvalidOptionError("password", "expected a password (or BOSDYN_CLIENT_PASSWORD), or a token to re-mint")
    if values["password"] and not values["username"]:
        raise InvalidOptionError("username", "a password needs a username (or BOSDYN_CLIENT_USERNAME)")
    return AuthSettings(**values)


def _choice(name, value, choices):
    value = _string(name, value, max_length=64)
    if value not in choices:
        raise InvalidOptionError(name, "expected one of %s, got %s" % (", ".join(choices), _describe(name, value)))
    return value


def lookup_options_from(params):
    """(on_error, concurrency) of the lookup's own options, parsed like every other option."""
    on_error = params.get("on_error")
    on_error = "fail" if on_error is None else _choice("on_error", on_error, ON_ERROR_CHOICES)
    concurrency = params.get("concurrency")
    concurrency = DEFAULT_CONCURRENCY if concurrency is None else _whole_number("concurrency", concurrency, 1, MAX_CONCURRENCY)
    return on_error, concurrency


def apply_fallbacks(params, host_vars=None, environ=None, config=None):
    """Fill options the task left unset: inventory variables, then environment variables, then ansible.cfg.

    ``config`` holds the raw values of ansible.cfg's ``[spot_auth]`` section, by key.
    """
    merged = dict(params)
    reminting = bool(merged.get("token"))  # an empty token (a default('') that found nothing) is no token
    environ = os.environ if environ is None else environ
    for name, where in OPTION_SOURCES.items():
        if merged.get(name) is not None or (reminting and name == "password"):
            continue  # a token given for re-minting must not be paired with a password from elsewhere
        candidates = (
            (host_vars or {}).get(where["var"]) if "var" in where else None,
            environ.get(where["env"]) or None if "env" in where else None,  # an empty variable is unset
            (config or {}).get(where["ini"]) if "ini" in where else None,
        )
        found = [value for value in candidates if value is not None]
        if found:
            merged[name] = found[0]
    return merged
