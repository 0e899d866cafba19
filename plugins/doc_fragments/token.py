# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment:
    # The options of spot.auth.token, shared by the module and the lookup.
    DOCUMENTATION = r"""
options:
  hostname:
    description:
      - The robot's DNS name or IP address (IPv6 bare or in brackets), without a port (see O(port)).
      - The TLS certificate is checked against O(authority), not against this name.
      - Defaults to the host's C(ansible_host), else its inventory name.
    type: str
  port:
    description:
      - TCP port of the robot's gRPC API.
      - Falls back to the host variable C(spot_port).
    type: int
    default: 443
  username:
    description:
      - User to log in as.
      - Falls back to the host variable C(spot_username), then the environment variable E(BOSDYN_CLIENT_USERNAME) (the Spot SDK's).
    type: str
  password:
    description:
      - Password of O(username). Mutually exclusive with O(token).
      - Falls back to the host variable C(spot_password), then the environment variable E(BOSDYN_CLIENT_PASSWORD),
        unless O(token) is given.
      - A refused password is never sent again in the same run (see O(session)), since each failed login counts toward
        the robot's lockout.
    type: str
  token:
    description:
      - A user token issued earlier by the same robot, re-minted into a fresh one instead of logging in with a password.
    type: str
  app_token:
    description:
      - Application token for robots on software older than 4.0, which need one in addition to the login.
      - Falls back to the host variable C(spot_app_token).
    type: str
  ca_cert:
    description:
      - Path to a PEM bundle of the CA certificates trusted for the robot's TLS certificate.
      - A regular file of at most 1 MiB, in which every C(BEGIN CERTIFICATE) block must be a valid X.509 certificate;
        anything else (a FIFO, a device, a junk block) is refused before any network call.
      - Defaults to the Boston Dynamics root CA shipped with this collection, which every Spot robot's certificate chains to.
      - Falls back to the host variable C(spot_ca_cert).
    type: path
  validate_certs:
    description:
      - Whether to verify the robot's TLS certificate.
      - V(false) still encrypts the connection but accepts any certificate, so anyone on the network path can
        impersonate the robot and receive the password. A warning is shown every time.
      - Falls back to the host variable C(spot_validate_certs).
    type: bool
    default: true
  authority:
    description:
      - The service name the robot's certificate must carry; sent as the TLS server name and the HTTP/2 authority.
      - Falls back to the host variable C(spot_authority).
    type: str
    default: auth.spot.robot
  timeout:
    description:
      - Seconds one attempt may take before it fails with C(TimedOutError). Greater than 0, at most 600.
    type: float
    default: 10
  retries:
    description:
      - Extra attempts for retryable failures (unreachable robot, rate limiting, timeout), with jittered exponential backoff.
      - Refused credentials and lockouts are never retried.
      - One handshake takes at most (O(retries) + 1) x O(timeout) plus the backoff, which is at most 0.25 x (2^O(retries) - 1) seconds
        and never more than 4 seconds a retry.
    type: int
    default: 3
  client_name:
    description:
      - Name the robot records for this client. Defaults to C(spot.auth/<version>@<controller hostname>).
    type: str
  serial:
    description:
      - The robot's serial number. Only names the O(token_cache) entry; with it the entry is
        C(<serial>.<username>.jwt), which the Spot SDK's C(TokenCacheFilesystem) reads too.
      - Falls back to the host variable C(spot_serial).
    type: str
  token_cache:
    description:
      - A directory where tokens are kept between runs and processes, one file per robot and user
        (C(<serial>.<username>.jwt), or C(<hostname>_<port>.<username>.jwt) without O(serial)).
      - A cached token with more than O(token_cache_margin) seconds left is used without contacting the robot.
        One closer to expiry is re-minted; if the robot refuses it, the password is used.
      - Created with mode 0700; refused when it is a symlink, belongs to another user or is open to others.
        Entries are written atomically with mode 0600; an entry that is not a private regular file is refused
        with a warning and replaced.
      - An entry whose token names another robot (its issuer differs from O(serial)) or another user (its subject
        differs from O(username)) is never used, not even for re-minting; a warning is shown and a fresh token
        replaces it. No cached token is used longer than the robot's 12-hour token lifetime, whatever expiry it claims.
    type: path
  token_cache_margin:
    description:
      - Seconds a cached token must still be valid to be used as it is.
    type: int
    default: 3600
  token_cache_mode:
    description:
      - How O(token_cache) is used.
      - V(use) serves a fresh cached token, re-mints an older one, writes every new token, and remembers refusals
        (see O(refusal_ttl)).
      - V(refresh) never serves or re-mints a cached token. It logs in (or re-mints O(token)), so the credential
        itself is proven, then writes the new token. This is how a new password is verified.
      - V(refusals_only) neither reads nor writes tokens and only remembers refusals, for example for an old
        password whose tokens must not replace the cached ones.
    type: str
    choices: [use, refresh, refusals_only]
    default: use
    version_added: 0.1.0
  refusal_ttl:
    description:
      - Seconds a refused credential is remembered across runs, with O(token_cache) set. During that time it is not
        sent to that robot for that user again; the task fails at once with the original C(error_type), saying when
        the robot refused it. A different credential is sent. A lockout stops every login of that user for its
        60 seconds.
      - The refusal is recorded beside the cache entry, in C(<serial>.<username>.refused) (or
        C(<hostname>_<port>.<username>.refused)), as a salted hash of the credential, never the credential itself.
        Delete that file to send the credential again at once.
      - The default of one hour means a run every 5 minutes with a wrong password reaches the robot once an hour,
        far from its lockout (6 failures in a row). V(0) turns the memory off. At most 604800 (7 days).
    type: int
    default: 3600
    version_added: 0.1.0
  session:
    description:
      - Whether the handshakes of one C(ansible-playbook) run go through the run's session, a local agent process
        shared by every fork, task, loop, lookup and role of the run. It logs in at most once per robot, user and
        credential while the token is fresh, never sends a refused credential again in the run (a lockout is
        remembered for 60 seconds), coalesces identical requests into one, and keeps gRPC out of Ansible's forked
        workers.
      - The agent starts on first use, listens on C($TMPDIR/spot-auth-<uid>/<run pid>-<start>/agent.sock) (0700
        directories; only the same user is answered), and exits with the run; credentials reach it over that socket only.
      - V(false), or an agent that cannot start (with a warning), runs the handshake in the calling process, which
        remembers only for itself.
      - Falls back to the environment variable E(SPOT_AUTH_SESSION). Ignored when the module is delegated to another host.
    type: bool
    default: true
    version_added: 0.1.0
notes:
  - Options left unset come from host variables, then environment variables, then the C([spot_auth]) section of
    C(ansible.cfg) (never for secrets); the lookup's documentation lists each source. Values are checked strictly,
    the same way by the module and the lookup. A misspelt boolean is an error, never false. A number given where
    text is expected must be quoted, so that YAML keeps it exactly.
  - Every request asks the robot not to log it (C(disable_rpc_logging)), since it carries a password or token.
  - Text a robot sends back (gRPC error details, header messages) is shown with control characters escaped and
    cut at 200 characters.
  - Failures are typed. C(error_type) names what went wrong; see the error reference in the collection's docs.
"""

    # Where the lookup finds each option besides its keyword arguments: the same places, in the same order,
    # as the module (module_utils/_options.py OPTION_SOURCES; a unit test keeps the two equal).
    PLUGINS = r"""
options:
  hostname:
    vars:
      - name: ansible_host
  port:
    vars:
      - name: spot_port
    ini:
      - section: spot_auth
        key: port
  username:
    vars:
      - name: spot_username
    env:
      - name: BOSDYN_CLIENT_USERNAME
  password:
    vars:
      - name: spot_password
    env:
      - name: BOSDYN_CLIENT_PASSWORD
  app_token:
    vars:
      - name: spot_app_token
  ca_cert:
    vars:
      - name: spot_ca_cert
    ini:
      - section: spot_auth
        key: ca_cert
  validate_certs:
    vars:
      - name: spot_validate_certs
    ini:
      - section: spot_auth
        key: validate_certs
  authority:
    vars:
      - name: spot_authority
    ini:
      - section: spot_auth
        key: authority
  timeout:
    ini:
      - section: spot_auth
        key: timeout
  retries:
    ini:
      - section: spot_auth
        key: retries
  client_name:
    ini:
      - section: spot_auth
        key: client_name
  serial:
    vars:
      - name: spot_serial
  token_cache:
    vars:
      - name: spot_token_cache
    ini:
      - section: spot_auth
        key: token_cache
  token_cache_margin:
    ini:
      - section: spot_auth
        key: token_cache_margin
  refusal_ttl:
    ini:
      - section: spot_auth
        key: refusal_ttl
  session:
    env:
      - name: SPOT_AUTH_SESSION
    ini:
      - section: spot_auth
        key: session
"""
