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
  - Lookups are lazy; Ansible evaluates them again every time the variable holding one is used. The run's
    session (see O(session)) makes that cheap and safe. Within one C(ansible-playbook) run, a robot and user are
    authenticated once while the token is fresh, whichever fork, task or loop asks, and a refused credential is
    never sent again. Across runs, set O(token_cache) so tokens are reused instead of minted.
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
  on_error:
    description:
      - What a failed term does.
      - V(fail) fails the lookup with the first failure's C(error_type) and message.
      - V(warn) returns an empty string for each failed term and the tokens of the others, and shows one warning
        that lists every failure with its C(error_type).
      - V(skip) does the same without the warning.
      - A bad option value fails the lookup whatever this says.
    type: str
    choices: [fail, warn, skip]
    default: fail
    version_added: 0.1.0
  concurrency:
    description:
      - At most this many handshakes of this lookup are in flight at once (1 to 10000).
      - The run's session also keeps the handshakes of the whole run within what the open-file limit allows,
        after raising the soft limit to the hard one where it may.
    type: int
    default: 200
    version_added: 0.1.0
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

- name: Tokens of the robots that answer; an empty string and one warning for the others
  ansible.builtin.set_fact:
    fleet_tokens: "{{ dict(groups['spot'] | zip(query('spot.auth.token', *groups['spot'], on_error='warn'))) | dict2items
                      | rejectattr('value', 'equalto', '') | items2dict }}"
  run_once: true
  no_log: true

- name: An address with an explicit port and credentials
  ansible.builtin.debug:
    msg: "{{ lookup('spot.auth.token', '192.0.2.10:443', username='operator', password=vault_spot_password) | length }}"
"""

RETURN = r"""
_raw:
  description:
    - One user token per term (one for the current host without terms).
    - With O(on_error=warn) or O(on_error=skip), an empty string for each term that failed.
  type: list
  elements: str
"""

import re

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display
from ansible_collections.spot.auth.plugins.module_utils import _handshake, _options
from ansible_collections.spot.auth.plugins.module_utils._errors import SpotAuthError, mask_secrets
from ansible_collections.spot.auth.plugins.plugin_utils import _session

display = Display()

_ADDRESS = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")
ON_ERROR_CHOICES = ("fail", "warn", "skip")


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        direct = dict(kwargs)
        on_error = self._on_error(direct.pop("on_error", "fail"))
        concurrency = self._concurrency(direct.pop("concurrency", _session.DEFAULT_CONCURRENCY))
        resolved = {}  # option values per variable source; address terms share the current host's
        targets = [self._settings(term, variables, direct, resolved) for term in (terms or [None])]
        for _label, settings in targets:
            if not settings.validate_certs:
                display.warning(_handshake.validate_certs_warning(settings))
        results = _session.obtain_all([settings for _label, settings in targets], concurrency, warn=display.warning)
        tokens = []
        failures = []
        for (label, _settings), result in zip(targets, results):
            if isinstance(result, SpotAuthError):
                failures.append(self._failure(label, result))
                tokens.append("")
                continue
            for warning in result.warnings:
                display.warning(warning)
            tokens.append(result.token)
        if failures and on_error == "fail":
            raise failures[0]
        if failures and on_error == "warn":
            display.warning("spot.auth.token: %d of %d robots failed, and their tokens are empty: %s"
                            % (len(failures), len(targets), "; ".join(failure.message for failure in failures)))
        return tokens

    @staticmethod
    def _on_error(value):
        if value not in ON_ERROR_CHOICES:
            raise AnsibleLookupError("InvalidOptionError: option on_error: expected one of %s, got %r"
                                     % (", ".join(ON_ERROR_CHOICES), value if isinstance(value, str) else type(value).__name__))
        return value

    @staticmethod
    def _concurrency(value):
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _session.MAX_CONCURRENCY:
            raise AnsibleLookupError("InvalidOptionError: option concurrency: expected a whole number from 1 to %d, got %r"
                                     % (_session.MAX_CONCURRENCY, value))
        return value

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
    def _failure(label, error):
        where = "%s: " % label if label and label != error.hostname else ""
        return AnsibleLookupError("%s: %s%s" % (error.error_type, where, error.message))
