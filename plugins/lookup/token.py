# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
name: token
short_description: Get user tokens from Boston Dynamics Spot robots
version_added: 0.1.0
description:
  - Returns a user token for each robot named in the terms, running Spot's auth handshake over gRPC and TLS
    on the controller. Handshakes for several terms run concurrently, so one call can serve a whole fleet.
  - A term is an inventory host name (its host variables supply the address, port and credentials),
    or an address C(host) or C(host:port). Without terms, the current host's robot.
  - Lookups are lazy; Ansible evaluates them again every time the variable holding one is used. Within one
    process a robot and user are authenticated once while the token is fresh, and a refused password is
    never sent twice. Across tasks and runs, set O(token_cache) so tokens are reused instead of minted.
  - Options come from keyword arguments, then host variables, then C(ansible.cfg) (section C([spot_auth]), never
    for secrets), then the Spot SDK's environment variables.
author:
  - spot.auth maintainers (@spot-auth)
options:
  _terms:
    description: Inventory host names or robot addresses (C(host) or C(host:port)).
    type: list
    elements: str
    required: false
extends_documentation_fragment:
  - spot.auth.token
  - spot.auth.token.plugins
"""

EXAMPLES = r"""
- name: A token for the current host's robot, in a header
  ansible.builtin.uri:
    url: "https://{{ ansible_host }}/api/v1/status"
    headers:
      Authorization: "Bearer {{ lookup('spot.auth.token') }}"

- name: Tokens for a whole group at once, reused across runs
  ansible.builtin.set_fact:
    fleet_tokens: "{{ dict(groups['spot'] | zip(query('spot.auth.token', *groups['spot'], token_cache='~/.cache/spot-tokens'))) }}"
  run_once: true
  no_log: true

- name: An address with an explicit port and credentials
  ansible.builtin.debug:
    msg: "{{ lookup('spot.auth.token', '192.0.2.10:443', username='operator', password=vault_spot_password) | length }}"
"""

RETURN = r"""
_raw:
  description: One user token per term (one for the current host without terms).
  type: list
  elements: str
"""

import hashlib
import os
import re
import time

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display
from ansible_collections.spot.auth.plugins.module_utils import _handshake, _options
from ansible_collections.spot.auth.plugins.module_utils._errors import (
    ExpiredApplicationTokenError,
    InvalidApplicationTokenError,
    InvalidLoginError,
    InvalidTokenError,
    SpotAuthError,
    TemporarilyLockedOutError,
    mask_secrets,
)
from ansible_collections.spot.auth.plugins.module_utils._tokens import TokenTimes

display = Display()

# Refusals that must not be answered by sending the same credentials again.
_REFUSALS = (InvalidLoginError, TemporarilyLockedOutError, InvalidTokenError,
             InvalidApplicationTokenError, ExpiredApplicationTokenError)
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")
# Per process: tokens handed out and credentials refused, keyed without the secrets themselves.
_SALT = os.urandom(16)
_TOKENS = {}
_REFUSED = {}


def _fingerprint(secret):
    return hashlib.sha256(_SALT + secret.encode("utf-8")).hexdigest() if secret else None


def _session_key(settings):
    credential = settings.password if settings.method == "password" else settings.token
    return (settings.hostname, settings.port, settings.authority, settings.username, settings.method,
            _fingerprint(credential), _fingerprint(settings.app_token))


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        resolved = {}  # option values per variable source; address terms share the current host's
        targets = [self._settings(term, variables, kwargs, resolved) for term in (terms or [None])]
        tokens = [None] * len(targets)
        pending = []
        clients = []
        try:
            for index, (label, settings) in enumerate(targets):
                token = self._reuse(settings)
                if token is not None:
                    tokens[index] = token
                    continue
                if not settings.validate_certs:
                    display.warning(_handshake.validate_certs_warning(settings))
                client = settings.client()
                clients.append(client)
                pending.append((index, label, settings, _handshake.obtain_async(settings, client)))
            errors = []
            for index, label, settings, future in pending:
                try:
                    outcome = future.result()
                except SpotAuthError as error:
                    if isinstance(error, _REFUSALS):
                        _REFUSED[_session_key(settings)] = error
                    errors.append(self._failure(label, error))
                    continue
                for warning in outcome.warnings:
                    display.warning(warning)
                _TOKENS[_session_key(settings)] = outcome.token
                tokens[index] = outcome.token
            if errors:
                raise errors[0]
        except SpotAuthError as error:  # an unusable token_cache directory, before any request
            raise self._failure(None, error) from None
        finally:
            for client in clients:
                client.close()
        return tokens

    def _settings(self, term, variables, direct, resolved):
        """(label, AuthSettings) of one term; ``resolved`` caches option values per variable source."""
        hostvars = variables.get("hostvars") or {}
        label = term
        params = {}
        source_key = "current host"
        if term is None:
            label = variables.get("inventory_hostname")
            source = variables
            params["hostname"] = variables.get("ansible_host") or label
        elif term in hostvars:
            source, source_key = hostvars[term], ("inventory host", term)
            params["hostname"] = source.get("ansible_host") or term
        else:
            match = _ADDRESS.match(term.strip()) if isinstance(term, str) else None
            if not match:
                raise AnsibleLookupError("InvalidOptionError: term %r is neither an inventory host nor host[:port]" % (term,))
            source = variables
            params["hostname"] = match.group("v6") or match.group("host")
            if match.group("port"):
                params["port"] = int(match.group("port"))
        try:
            if source_key not in resolved:
                self.set_options(var_options=source, direct=direct)
                resolved[source_key] = {name: self.get_option(name) for name in _options.OPTION_SPEC}
            for name, value in resolved[source_key].items():
                if params.get(name) is None or name in direct:
                    params[name] = value
            if params.get("token") and "password" not in direct:
                params["password"] = None  # re-mint the given token; a password from elsewhere is not paired with it
            return label, _options.settings_from(params)
        except SpotAuthError as error:
            raise self._failure(label, error) from None
        except AnsibleError as error:
            secrets = [value for value in (direct.get(name) for name in _options.SECRET_OPTIONS) if isinstance(value, str)]
            raise AnsibleLookupError("InvalidOptionError: %s" % mask_secrets(str(error.message), secrets)) from None

    @staticmethod
    def _reuse(settings):
        """A token this process already got for these settings, or the refusal it already got."""
        key = _session_key(settings)
        refusal = _REFUSED.get(key)
        if refusal is not None:
            raise LookupModule._failure(settings.hostname, refusal)
        token = _TOKENS.get(key)
        if token is not None:
            left = TokenTimes(token).seconds_left(time.time())
            if left is None or left > settings.token_cache_margin:
                return token
        return None

    @staticmethod
    def _failure(label, error):
        where = "%s: " % label if label and label != error.hostname else ""
        return AnsibleLookupError("%s: %s%s" % (error.error_type, where, error.message))
