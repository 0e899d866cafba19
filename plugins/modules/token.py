#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: token
short_description: Get a user token from a Boston Dynamics Spot robot
version_added: 0.1.0
description:
  - Runs Spot's auth handshake (C(bosdyn.api.AuthService/GetAuthToken) over gRPC and TLS) against the robot of
    each host in the play, logging in with a username and password or re-minting an earlier token, and leaves
    the token in the host variable C(spot_auth) for later tasks.
  - Robots are inventory hosts but run nothing of Ansible. The handshake runs on the controller, in the
    controller's Python, without connecting to the host; no C(connection) or C(delegate_to) is needed.
    With C(delegate_to) a remote host (a site gateway), the module is shipped there and runs the handshake
    from that host, which then needs the C(grpcio) and C(protobuf) Python packages.
  - Every failure is a task failure whose RV(error_type) says what went wrong, so a play can branch on it.
  - C(spot_auth) is a host variable for the rest of the run, not a gathered fact, so it never reaches a
    persistent fact cache. The task result holds the token too, for C(register).
  - "C(changed) is true when a token was minted, and also when the task put a token from O(token_cache) into
    C(spot_auth) for the first time in a run, because Ansible reports a new host variable as a change. For
    idempotence checks use C(changed_when: result.spot_auth.method not in ['cache', 'session'])."
  - Options not set on the task fall back to module defaults (C(group/spot.auth.spot)), then to the host
    variables named in each option, then to the Spot SDK's environment variables.
extends_documentation_fragment:
  - spot.auth.token
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Validates the options and reports what would be done, without contacting the robot.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action:
    support: full
    details: An action plugin runs the handshake on the controller unless the task is delegated to another host.
  async:
    support: none
  bypass_host_loop:
    support: none
author:
  - spot.auth maintainers (@spot-auth)
"""

EXAMPLES = r"""
- name: Authenticate every robot of the fleet
  hosts: spot
  gather_facts: false
  tasks:
    - name: Log in (credentials from spot_username/spot_password or BOSDYN_CLIENT_*)
      spot.auth.token:

    - name: Use the token in a later task
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} token expires at {{ spot_auth.expires_at }}"

- name: Re-mint the token from an earlier task instead of sending the password again
  hosts: spot
  gather_facts: false
  tasks:
    - name: Refresh
      spot.auth.token:
        username: "{{ spot_auth.username }}"
        token: "{{ spot_auth.token }}"

- name: Branch on what went wrong
  hosts: spot
  gather_facts: false
  tasks:
    - name: Log in, tolerating robots that are locked out
      spot.auth.token:
      register: login
      failed_when:
        - login.failed | default(false)
        - login.error_type != 'TemporarilyLockedOutError'

    - name: Rescue robots whose certificate is not trusted
      block:
        - name: Log in
          spot.auth.token:
      rescue:
        - name: Report
          ansible.builtin.debug:
            msg: "{{ inventory_hostname }}: {{ ansible_failed_result.error_type }}: {{ ansible_failed_result.msg }}"

- name: Settings for a whole play
  hosts: spot
  gather_facts: false
  module_defaults:
    group/spot.auth.spot:
      ca_cert: /etc/spot/site-ca.pem
      timeout: 5
      retries: 2
  tasks:
    - name: Log in with the play's settings
      spot.auth.token:
        username: operator
        password: "{{ vault_spot_password }}"
"""

RETURN = r"""
spot_auth:
  description:
    - The token and what is known about it; also set as the host variable C(spot_auth).
    - Absent in check mode and on failure.
  returned: success
  type: dict
  contains:
    token:
      description: The user token (a JWT signed by the robot, valid on that robot only).
      type: str
      returned: success
    hostname:
      description: The address the handshake went to.
      type: str
      returned: success
    port:
      description: The port the handshake went to.
      type: int
      returned: success
    username:
      description: The user the token is for (null when re-minting without O(username)).
      type: str
      returned: success
    method:
      description:
        - How the token was obtained, C(password) (login), C(token) (re-minted), C(cache) (read from O(token_cache)),
          or C(session) (obtained earlier in the same run, see O(session)).
      type: str
      returned: success
      sample: password
    issued_at:
      description: Issue time read from the token (ISO 8601, UTC), null when the token does not say.
      type: str
      returned: success
      sample: "2026-11-28T15:04:05Z"
    expires_at:
      description: Expiry read from the token (ISO 8601, UTC), null when the token does not say.
      type: str
      returned: success
      sample: "2026-11-29T03:04:05Z"
error_type:
  description:
    - What went wrong, named after the Spot SDK's exception classes where one fits, for example
      C(InvalidLoginError), C(InvalidTokenError), C(TemporarilyLockedOutError), C(TimedOutError),
      C(UnableToConnectToRobotError), C(TooManyRequestsError), C(CertificateVerificationError),
      C(NonexistentAuthorityError), C(InvalidOptionError).
  returned: failure
  type: str
  sample: InvalidLoginError
retryable:
  description: Whether trying again later can help (the task already retried up to O(retries) times).
  returned: failure
  type: bool
status:
  description: The response status name (for example C(STATUS_INVALID_LOGIN)), null when the robot gave none.
  returned: failure
  type: str
grpc_code:
  description: The gRPC status code name (for example C(UNAVAILABLE)), null when the call itself succeeded.
  returned: failure
  type: str
hostname:
  description: The robot the failure is about.
  returned: failure
  type: str
"""

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.spot.auth.plugins.module_utils import _client, _handshake, _options, _wire
from ansible_collections.spot.auth.plugins.module_utils._errors import SpotAuthError


def main():
    module = AnsibleModule(argument_spec=copy.deepcopy(_options.OPTION_SPEC), supports_check_mode=True)
    for library, error in (("grpcio", _client.grpc_import_error()), ("protobuf", _wire.PROTOBUF_IMPORT_ERROR)):
        if error:
            module.fail_json(msg=missing_required_lib(library), exception=error, error_type="MissingRequiredLibraryError")
    try:
        # The SDK's environment variables of the host the module runs on.
        settings = _options.settings_from(_options.apply_fallbacks(module.params))
    except SpotAuthError as error:
        module.fail_json(**error.to_result())
    if not settings.validate_certs:
        module.warn(_handshake.validate_certs_warning(settings))
    if module.check_mode:
        module.exit_json(changed=True, msg="check mode: would get a token from %s by %s" % (settings.hostname, settings.method))
    try:
        outcome = _handshake.obtain(settings)
    except SpotAuthError as error:
        module.fail_json(**error.to_result())
    for warning in outcome.warnings:
        module.warn(warning)
    module.exit_json(changed=outcome.minted, spot_auth=_handshake.token_facts(settings, outcome))


if __name__ == "__main__":
    main()
