# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible glue of spot.auth.token: runs the handshake on the controller.

Robots run nothing of Ansible, so the task never uses the host's connection: options are gathered
from task arguments, host variables, the environment and ansible.cfg (``plugin_utils/_option_sources``),
checked by the one option parser (``module_utils/_options``), the run's session does the handshake
(``plugin_utils/_session``), and the token is handed back as the ``spot_auth`` host variable.
Delegated to another host (a site gateway), the module is shipped and runs there with that host's Python.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.plugins.action import ActionBase
from ansible_collections.spot.auth.plugins.module_utils import _handshake, _options
from ansible_collections.spot.auth.plugins.module_utils._errors import SpotAuthError
from ansible_collections.spot.auth.plugins.plugin_utils import _option_sources, _session

# Delegating to the controller itself keeps the handshake in this process.
_CONTROLLER_NAMES = ("localhost", "127.0.0.1", "::1")


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        if self._task.delegate_to and self._task.delegate_to not in _CONTROLLER_NAMES:
            return self._run_on_delegate(result, task_vars)
        try:
            settings = _options.settings_from(_option_sources.gather(self._task.args, self._host_vars(task_vars)))
        except SpotAuthError as error:
            result.update(failed=True, **error.to_result())
            return result
        if not settings.validate_certs:
            # Named after the task and host: Ansible shows an identical warning only once per run.
            self._display.warning("%s (task %r on %s)" % (_handshake.validate_certs_warning(settings), self._task.get_name(),
                                                          task_vars.get("inventory_hostname")))
        if self._task.check_mode:
            result.update(changed=True, msg="check mode: would get a token from %s by %s" % (settings.hostname, settings.method))
            return result
        # The run's session does the handshake: no gRPC in this forked worker, one memory for the run.
        outcome = _session.obtain_all([settings], warn=self._display.warning)[0]
        if isinstance(outcome, SpotAuthError):
            result.update(failed=True, **outcome.to_result())
            return result
        for warning in outcome.warnings:
            self._display.warning(warning)
        result.update(changed=outcome.minted, spot_auth=_handshake.token_facts(settings, outcome))
        return self._with_host_variable(result, task_vars)

    def _host_vars(self, task_vars, source=None):
        """The robot's inventory variables that options fall back to, templated."""
        return _option_sources.host_variables(task_vars if source is None else source, self._templar,
                                              task_vars.get("inventory_hostname"))

    def _run_on_delegate(self, result, task_vars):
        """Ship the module to the delegate host; inventory fallbacks are the robot's, resolved here.

        Values are checked here first, with the parser the module uses, so a bad one fails the same way
        and no secret of the wrong type is shipped. The credentials and the CA file may be the delegate's
        own, so their presence is checked there.
        """
        # task_vars hold the delegate's connection variables here; the robot's own are in hostvars.
        robot_vars = task_vars.get("hostvars", {}).get(task_vars.get("inventory_hostname"), {})
        module_args = _option_sources.gather(self._task.args, self._host_vars(task_vars, robot_vars), environ={})
        try:
            _options.settings_from(module_args, runs_here=False)
        except SpotAuthError as error:
            result.update(failed=True, **error.to_result())
            return result
        result.update(self._execute_module(module_name="spot.auth.token", module_args=module_args, task_vars=task_vars))
        if result.get("failed") or "spot_auth" not in result:
            return result
        return self._with_host_variable(result, task_vars)

    @staticmethod
    def _with_host_variable(result, task_vars):
        """Hand the token back as the host variable spot_auth, hidden from every display.

        Facts returned by an action go to the persistent fact cache (only set_fact is exempt), so the
        token travels as an in-memory inventory variable instead, which lives for the run only.
        """
        result["add_host"] = {
            "host_name": task_vars.get("inventory_hostname"),
            "host_vars": {_handshake.FACT_NAME: result["spot_auth"]},
        }
        result["_ansible_no_log"] = True
        return result
