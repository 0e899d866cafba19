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
  - Options come from keyword arguments, then host variables, then environment variables, then C(ansible.cfg)
    (section C([spot_auth]), never for secrets), as for the module, and go through the module's option parser. So the
    lookup accepts and refuses the same values, and an unknown keyword is an error.
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

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display
from ansible_collections.spot.auth.plugins.module_utils import _handshake, _options
from ansible_collections.spot.auth.plugins.module_utils._errors import SpotAuthError
from ansible_collections.spot.auth.plugins.plugin_utils import _option_sources, _session

display = Display()

_ADDRESS = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+))(?::(?P<port>\d+))?$")
_LOOKUP_OPTIONS = ("on_error", "concurrency")


class LookupModule(LookupBase):
    """Thin: options go through the one parser (``_options``), handshakes through the run's session."""

    def run(self, terms, variables=None, **kwargs):
        variables = variables or {}
        arguments = dict(kwargs)
        own = {name: arguments.pop(name, None) for name in _LOOKUP_OPTIONS}
        try:
            on_error, concurrency = _options.lookup_options_from(own)
        except SpotAuthError as error:
            raise self._failure(None, error) from None
        host_vars = {}  # per variable source; address terms share the current host's
        targets = [self._settings(term, variables, arguments, host_vars) for term in (terms or [None])]
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

    def _settings(self, term, variables, arguments, host_vars):
        """(label, AuthSettings) of one term; ``host_vars`` caches the templated variables per source."""
        hostvars = variables.get("hostvars") or {}
        params = dict(arguments)
        if term is None:
            label = variables.get("inventory_hostname")
            source, source_key = variables, None
        elif isinstance(term, str) and term in hostvars:
            label, source, source_key = term, hostvars[term], term
        else:
            label, source, source_key = term, variables, None
            match = _ADDRESS.match(term.strip()) if isinstance(term, str) else None
            if not match:
                raise AnsibleLookupError("InvalidOptionError: term %r is neither an inventory host nor host[:port]" % (term,))
            # The term names the robot: its address wins over keywords and variables.
            params["hostname"] = match.group("v6") or match.group("host")
            if match.group("port"):
                params["port"] = match.group("port")
        if source_key not in host_vars:
            inventory_name = variables.get("inventory_hostname") if source_key is None else source_key
            host_vars[source_key] = _option_sources.host_variables(source, self._templar, inventory_name)
        robot_vars = dict(host_vars[source_key])
        if source_key is not None:
            params.pop("hostname", None)  # an inventory host's own address
        try:
            return label, _options.settings_from(_option_sources.gather(params, robot_vars))
        except SpotAuthError as error:
            raise self._failure(label, error) from None

    @staticmethod
    def _failure(label, error):
        """The lookup's error: the term first unless the message already names it."""
        where = "%s: " % label if label and label not in error.message else ""
        return AnsibleLookupError("%s: %s%s" % (error.error_type, where, error.message))
