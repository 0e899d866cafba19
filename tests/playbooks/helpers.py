# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers of the playbook tests; importing this makes spot.auth importable as a collection."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import sys

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_PATH = os.path.join(REPO_ROOT, "build", "collections")
CALLBACK_PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")


def _link_collection():
    """ansible-core finds spot.auth through build/collections (scripts/setup.sh makes the same link)."""
    link = os.path.join(COLLECTIONS_PATH, "ansible_collections", "spot", "auth")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO_ROOT, link)
    if COLLECTIONS_PATH not in sys.path:
        sys.path.insert(0, COLLECTIONS_PATH)


_link_collection()


def playbook_environment(tmp_path, results, extra=None):
    """The environment of a test's ansible-playbook run: no SDK credentials, results recorded to ``results``."""
    environ = dict(os.environ)
    for name in ("BOSDYN_CLIENT_USERNAME", "BOSDYN_CLIENT_PASSWORD"):
        environ.pop(name, None)
    environ.update({
        # SPOT_AUTH_TEST_COLLECTIONS_PATH runs the playbooks against another copy of the collection (an older commit).
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("SPOT_AUTH_TEST_COLLECTIONS_PATH") or COLLECTIONS_PATH,
        "ANSIBLE_FORKS": "25",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_PLUGINS,
        "ANSIBLE_CALLBACKS_ENABLED": "results_json",
        "SPOT_AUTH_TEST_RESULTS": str(results),
    })
    environ.update(extra or {})
    return environ


def edit_inventory(path, change):
    """Rewrite an inventory file: change(data) edits the parsed YAML in place."""
    with open(path) as handle:
        data = yaml.safe_load(handle)
    change(data)
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle)
    return path


def strip_credentials(data):
    """An inventory edit: the robots' usernames and passwords must come from elsewhere."""
    for host in spot_hosts(data).values():
        del host["spot_username"], host["spot_password"]


def spot_hosts(data):
    return data["all"]["children"]["spot"]["hosts"]


def login_play(options="{}"):
    """A play whose one task, named ``login``, runs spot.auth.token with ``options`` (a YAML flow mapping)."""
    return """
- hosts: spot
  gather_facts: false
  tasks:
    - name: login
      spot.auth.token: %s
""" % options


def write_vars(tmp_path, name, data):
    """An extra-vars file, so that nothing secret is on the command line."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return ["-e", "@%s" % path]


def outcomes(robot):
    """The statuses a simulated robot answered, in order."""
    return [record.outcome for record in robot.requests]


def forget_requests(fleet):
    """Start counting requests afresh, keeping lockouts and rate-limit state."""
    for robot in fleet:
        robot.reset(records=True, lockouts=False, faults=False, rate_limit=False)


def sent(robot):
    """What the robot received since forget_requests: ['password:STATUS_OK', 'token:STATUS_INVALID_TOKEN', ...]."""
    return ["%s:%s" % (record.kind, record.outcome) for record in robot.requests]
