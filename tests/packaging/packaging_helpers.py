# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by the packaging tests: paths, the collection link and ansible commands of this venv."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_PATH = os.path.join(REPO_ROOT, "build", "collections")
BIN = os.path.dirname(sys.executable)
COMMAND_TIMEOUT = 110


def link_collection():
    """ansible-core finds spot.auth through build/collections (scripts/setup.sh makes the same link)."""
    link = os.path.join(COLLECTIONS_PATH, "ansible_collections", "spot", "auth")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(REPO_ROOT, link)
    if COLLECTIONS_PATH not in sys.path:
        sys.path.insert(0, COLLECTIONS_PATH)


link_collection()


def tool(name):
    """The path of an ansible command (ansible-doc, ansible-playbook, ...) next to this Python."""
    path = os.path.join(BIN, name)
    return path if os.path.exists(path) else name


def ansible_env(tmp_path, **extra):
    """os.environ for an ansible command: this collection only, no SDK credentials from the caller."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("BOSDYN_CLIENT_")}
    environ.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    })
    environ.update(extra)
    return environ


def run(command, env=None, cwd=None, timeout=COMMAND_TIMEOUT):
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False)


def checkout_files():
    """The checkout's files as git sees them (tracked, and untracked but not ignored), relative paths."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                             capture_output=True, check=True, timeout=60).stdout.decode()
    # A tracked file deleted in the work tree is left out.
    return sorted(name for name in set(listing.split("\0")) if name and os.path.isfile(os.path.join(REPO_ROOT, name)))


def copy_checkout(destination):
    """Copy checkout_files() to destination, as a fresh clone would have them; returns destination."""
    destination = str(destination)
    for name in checkout_files():
        target = os.path.join(destination, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(REPO_ROOT, name), target)
    return destination


def copy_collection(collections_root):
    """Copy the checkout's files to <collections_root>/ansible_collections/spot/auth."""
    return copy_checkout(os.path.join(str(collections_root), "ansible_collections", "spot", "auth"))
