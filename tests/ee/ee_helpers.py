# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by the execution-environment tests: the image, ansible-navigator runs and the secret search."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys

import yaml
from spot_auth_sim.testing import JWT_SHAPE

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)

with open(os.path.join(REPO_ROOT, "galaxy.yml")) as _handle:
    VERSION = yaml.safe_load(_handle)["version"]
# The image scripts/build_ee.sh builds, tagged with galaxy.yml's version.
IMAGE = "localhost/spot-auth-ee:%s" % VERSION
BUILD_HINT = "build it first with: bash scripts/build_ee.sh"

NAVIGATOR = os.path.join(BIN, "ansible-navigator")
NAVIGATOR_CONFIG = os.path.join(REPO_ROOT, "ansible-navigator.yml")
# Where ansible-builder installs the image's collections (galaxy stage of execution-environment.yml).
IMAGE_COLLECTIONS = "/usr/share/ansible/collections"
# What every container of this machine needs (scripts/build_ee.sh, ansible-navigator.yml), and the host's
# network namespace, where the simulated robots listen on 127.0.0.1.
PODMAN_OPTIONS = ["--runtime=runc", "--ulimit=nofile=1024:1024", "--ulimit=nproc=1024:1024", "--network=host"]

# One ansible-navigator or ansible-runner job; the fleet's own start and stop have their own bounds.
JOB_TIMEOUT = 300
COMMAND_TIMEOUT = 120

# The same shape as tests/playbooks/conftest.py JWT_SHAPE: header.payload.signature, base64url JSON.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# ansible-runner's display callback hides each event's metadata in stdout: ESC[K <base64 JSON> ESC[<n>D ESC[K.
RUNNER_HIDDEN_DATA = re.compile(r"\x1b\[K([A-Za-z0-9+/=]+)\x1b\[[0-9]+D")


def redact(text):
    """``text`` with token-shaped strings cut to their first 12 characters, for failure messages."""
    return JWT_SHAPE.sub(lambda match: match.group(0)[:12] + "...", text)


def plain(text):
    """``text`` without terminal escape sequences (colours, and the runner's hidden event metadata)."""
    return ANSI.sub("", RUNNER_HIDDEN_DATA.sub("", text))


def run(command, env=None, cwd=None, timeout=COMMAND_TIMEOUT):
    """subprocess.run in its own process group, which is killed (with what it started) on timeout."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               text=True, env=env, cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            stdout, stderr = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
        timed_out = "%s did not finish within %d s:\n%s\n%s" % (command[:3], timeout, redact(stdout[-3000:]), redact(stderr[-3000:]))
    else:
        timed_out = None
    assert timed_out is None, timed_out
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def clean_environment(**extra):
    """os.environ for a job, without the caller's SDK credentials."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("BOSDYN_CLIENT_")}
    environ.update(extra)
    return environ


# --------------------------------------------------------------------------------------------
# The secret search


class Secrets(dict):
    """{name: value} of secrets, whose repr (in pytest's failure reports) shows the names only."""

    def __repr__(self):
        return "Secrets(%s)" % sorted(self)


def secret_forms(value):
    """The ways a secret can be written in text or JSON: as it is, and JSON-escaped."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    return sorted(form for form in forms if form)


def hidden_texts(text):
    """The JSON that ansible-runner hides in stdout between escape sequences, decoded."""
    for match in RUNNER_HIDDEN_DATA.finditer(text):
        try:
            yield base64.b64decode(match.group(1)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue


def kind_of(finding):
    """'password' or 'token': what a finding of find_secrets is."""
    return "password" if finding.startswith("password") else "token"


def find_secrets(text, secrets):
    """The findings in ``text``: the names of the ``secrets`` it holds, and the token-shaped strings.

    ``secrets`` is {name: value}, each name starting with "password" or "token". A finding never quotes a
    secret: a token-shaped string is shown by its first 12 characters.
    """
    findings = []
    texts = [text] + list(hidden_texts(text))
    for name, value in sorted(secrets.items()):
        if any(form in candidate for candidate in texts for form in secret_forms(value)):
            findings.append(name)
    for candidate in texts:
        for match in JWT_SHAPE.finditer(candidate):
            findings.append("token-shaped %s..." % match.group(0)[:12])
    return findings


def read_text(path):
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "replace")


def files_under(root):
    """Every regular file under ``root`` (symbolic links and FIFOs are not followed or read), sorted."""
    found = []
    for directory, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path)
    return found


def search_tree(root, secrets, allowed=None):
    """{path relative to root: findings} for every file under ``root``.

    ``allowed`` is {relative path: kinds}: in those files, findings of those kinds ("password", "token")
    are expected and not reported; every other kind still is. The relative path itself is searched too.
    """
    allowed = allowed or {}
    leaks = {}
    for path in files_under(root):
        relative = os.path.relpath(path, root)
        findings = [finding for finding in find_secrets(relative + "\n" + read_text(path), secrets)
                    if kind_of(finding) not in allowed.get(relative, ())]
        if findings:
            leaks[relative] = findings
    return leaks


def text_leaks(sources, secrets):
    """{source name: findings} of the texts of ``sources`` ({name: text}) that hold a secret."""
    leaks = {}
    for name, text in sources.items():
        findings = find_secrets(text, secrets)
        if findings:
            leaks[name] = findings
    return leaks


# --------------------------------------------------------------------------------------------
# ansible-navigator


class NavigatorRun:
    """One ansible-navigator run and everything it left: stdout, stderr, its log, its playbook artifact and
    the private data directory of its ansible-runner (artifacts/<uuid>/: job_events, stdout, command, ...)."""

    def __init__(self, completed, out_dir):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.log_path = os.path.join(out_dir, "ansible-navigator.log")
        self.artifact_path = os.path.join(out_dir, "playbook-artifact.json")
        self.runner_dir = os.path.join(out_dir, "ansible-runner")

    @property
    def plain_stdout(self):
        return plain(self.stdout)

    def leaks(self, secrets):
        """{what: findings} of everything the run left (see find_secrets); empty when nothing holds a secret."""
        sources = {"stdout": self.stdout, "stderr": self.stderr}
        for name, path in (("ansible-navigator log", self.log_path), ("playbook artifact", self.artifact_path)):
            if os.path.exists(path):
                sources[name] = read_text(path)
        leaks = text_leaks(sources, secrets)
        for relative, findings in search_tree(self.runner_dir, secrets).items():
            leaks["ansible-runner " + relative] = findings
        return leaks

    def artifact(self):
        with open(self.artifact_path) as handle:
            return json.load(handle)

    def describe(self):
        return "ansible-navigator exited %s\n--- stdout (end)\n%s\n--- stderr (end)\n%s" % (
            self.returncode, redact(self.plain_stdout[-6000:]), redact(self.stderr[-3000:]))


def navigator_options(out_dir):
    """Options of every ansible-navigator command of the tests, and ``out_dir`` made ready for what they keep.

    The image is named with --eei, as in ansible-navigator.yml's own example. The run keeps its own log (debug
    level), its playbook artifact and its ansible-runner directory (which must exist beforehand, or
    ansible-navigator uses a temporary one and removes it) in ``out_dir``, so that all can be searched.
    That the image's spot.auth runs, not the checkout's (ansible-navigator mounts the checkout, whose
    ansible.cfg names build/collections), is ansible-navigator.yml's doing, and the tests check it.
    """
    os.makedirs(os.path.join(out_dir, "ansible-runner"))
    return ["--eei", IMAGE, "--mode", "stdout",
            "--lf", os.path.join(out_dir, "ansible-navigator.log"), "--ll", "debug",
            "--rad", os.path.join(out_dir, "ansible-runner")]


def navigator_run(out_dir, playbook, inventory, navigator_args=(), playbook_args=()):
    """``ansible-navigator run PLAYBOOK -i INVENTORY`` from the repository root, with ansible-navigator.yml."""
    command = [NAVIGATOR, "run", playbook, "-i", inventory] + navigator_options(out_dir)
    command += ["--pae", "true", "--pas", os.path.join(out_dir, "playbook-artifact.json")]
    command += list(navigator_args) + list(playbook_args)
    return NavigatorRun(navigator_command(command), out_dir)


def navigator_exec(out_dir, *command):
    """``ansible-navigator exec -- COMMAND`` in the image, with the options of navigator_run."""
    completed = navigator_command([NAVIGATOR, "exec"] + navigator_options(out_dir) + ["--"] + list(command))
    return NavigatorRun(completed, out_dir)


def navigator_command(command):
    """Run an ansible-navigator command line from the repository root, with ANSIBLE_NAVIGATOR_CONFIG set.

    When ansible-navigator cannot apply its settings it writes its log to ansible-navigator.log in the
    directory it runs from: such a log, new in the checkout, is removed from it and printed (pytest shows it
    with the failure).
    """
    stray_log = os.path.join(REPO_ROOT, "ansible-navigator.log")
    had_log = os.path.exists(stray_log)
    # ansible-navigator copies its helper scripts to $XDG_CACHE_HOME (default ~/.cache): keep them in build/.
    environ = clean_environment(ANSIBLE_NAVIGATOR_CONFIG=NAVIGATOR_CONFIG,
                                XDG_CACHE_HOME=os.path.join(REPO_ROOT, "build", "ansible-navigator", "cache"))
    environ.pop("ANSIBLE_COLLECTIONS_PATH", None)
    try:
        return run(command, env=environ, cwd=REPO_ROOT, timeout=JOB_TIMEOUT)
    finally:
        if not had_log and os.path.exists(stray_log):
            text = read_text(stray_log)
            os.unlink(stray_log)
            print("ansible-navigator could not apply its settings; its log ends:\n%s" % text[-4000:])


def podman():
    path = shutil.which("podman")
    assert path, "podman is not installed: scripts/build_ee.sh installs it and builds %s" % IMAGE
    return path
