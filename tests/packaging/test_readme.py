# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The README works as printed, and the built collection carries only the collection.

Every command the README prints (its indented code blocks, and inline code that is a command such as
`ansible-doc spot.auth.token`) runs in a copy of this checkout, in README order, from
its root, in a shell without this venv or any ANSIBLE_* setting, with a fresh HOME: the commands before
the README's activation line as they are, every later one after it. The only change is the simulated
fleet's directory: /tmp/fleet becomes a temporary one (and the simulator also watches this test's pid).
Commands that run for minutes or are this very suite get --help, for the reason in COMMANDS.

Then user-like files are dropped into that copy's root, next to what the README's plays left there, and
`ansible-galaxy collection build` must produce exactly the collection's own files.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import signal
import subprocess
import tarfile
import time

import pytest
import yaml

from packaging_helpers import BIN, REPO_ROOT, checkout_files, copy_checkout, run, tool

ACTIVATE = "source .venv/bin/activate"
FLEET_DIR = "/tmp/fleet"

# (pattern of a README command, how the test runs it, why). A command no pattern matches fails the test.
COMMANDS = [
    (r"bash scripts/demo\.sh", "run", "the first command on a fresh machine"),
    (r"bash scripts/test\.sh", "suite", "the suite this test belongs to; .ci/run runs it"),
    (re.escape(ACTIVATE), "activate", "every later command runs after it"),
    (r"spot-auth-sim .*&", "background", "the fleet the later commands use"),
    (r"(\w+=\S+ )*ansible-playbook .*", "run", "a play against the simulated fleet"),
    (r"ansible-doc .*", "run", "the collection must be found"),
    (r"python scripts/generate_wire\.py", "run", "regenerates the same files"),
    (r"python scripts/generate_error_reference\.py", "run", "regenerates the same file"),
    (r"ansible-galaxy collection build", "run", "builds the tarball in the checkout's root"),
    (r"bash scripts/(test_matrix|build_and_install|check_ee|build_ee)\.sh", "help", "scripts/test.sh runs it as a step"),
    (r"ansible-navigator run .*", "help", "needs the image: tests/ee runs it after scripts/build_ee.sh"),
    (r"\.venv/bin/python benchmarks/fleet_benchmark\.py( .*)?", "help", "takes an hour; its arguments are parsed"),
]
# An inline code span is a command when it has arguments and starts with one of these.
COMMAND_WORDS = ("ansible-doc", "ansible-playbook", "ansible-galaxy", "ansible-navigator", "bash", "python", ".venv/bin/python",
                 "spot-auth-sim", "molecule", "source")
STEP_TIMEOUT = 300


def readme_commands():
    """In README order: command lines of the indented code blocks (continuations joined, comments removed)
    and inline code spans that are commands (COMMAND_WORDS)."""
    with open(os.path.join(REPO_ROOT, "README.md")) as handle:
        text = handle.read()
    commands, fenced, pending = [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if not line.startswith("    "):
            commands.extend(span for span in re.findall(r"`([^`]+)`", line)
                            if " " in span and span.split()[0] in COMMAND_WORDS)
            continue
        code = line.strip()
        if code.startswith("#") and not pending:
            continue
        code = re.sub(r"\s+#\s.*$", "", code)
        if code.endswith("\\"):
            pending += code[:-1].strip() + " "
            continue
        commands.append(pending + code)
        pending = ""
    return commands


def how_to_run(command):
    for pattern, how, _why in COMMANDS:
        if re.fullmatch(pattern, command):
            return how
    return None


def new_shell_environment(home):
    """A login shell's environment: no venv on PATH, no Ansible, SDK or collection settings."""
    venv_bin = os.path.realpath(BIN)
    environ = {key: value for key, value in os.environ.items()
               if not key.startswith(("ANSIBLE_", "SPOT_AUTH_", "BOSDYN_", "MOLECULE_"))
               and key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    environ["PATH"] = os.pathsep.join(entry for entry in environ.get("PATH", "").split(os.pathsep)
                                      if entry and os.path.realpath(entry) != venv_bin)
    environ["HOME"] = str(home)
    return environ


def wait_for(path, process, seconds):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        assert process.poll() is None, "the simulator exited with %s" % process.returncode
        assert time.monotonic() < deadline, "the simulator wrote no %s within %d s" % (path, seconds)
        time.sleep(0.1)


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory):
    """Runs the README's commands in a copy of the checkout; returns (checkout, [(command, how, result)])."""
    # The copy shares this checkout's .venv: bring it up to date here first, so that the copy's
    # scripts/setup.sh finds nothing to install (it would install the copy's simulator into this venv).
    setup = run(["bash", "scripts/setup.sh"], cwd=REPO_ROOT, timeout=1800)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    base = tmp_path_factory.mktemp("readme")
    checkout = copy_checkout(base / "checkout")
    os.symlink(os.path.join(REPO_ROOT, ".venv"), os.path.join(checkout, ".venv"))
    fleet_dir = str(base / "fleet")
    home = base / "home"
    home.mkdir()
    environ = new_shell_environment(home)
    activated, background, results = False, [], []
    try:
        for command in readme_commands():
            how = how_to_run(command)
            if how in (None, "suite"):
                results.append((command, how, None))
                continue
            if how == "activate":
                activated = True
                continue
            line = command.replace(FLEET_DIR, fleet_dir)
            if how == "help":
                line += " --help"
            if how == "background":
                line = "exec " + line.rstrip("& ") + " --watch-pid %d" % os.getpid()
            script = (ACTIVATE + " && " + line) if activated else line
            if how == "background":
                process = subprocess.Popen(["bash", "-c", script], cwd=checkout, env=environ, start_new_session=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                background.append(process)
                wait_for(os.path.join(fleet_dir, "inventory.yml"), process, 60)
                results.append((command, how, None))
                continue
            results.append((command, how, run(["bash", "-c", script], env=environ, cwd=checkout, timeout=STEP_TIMEOUT)))
        yield checkout, fleet_dir, results
    finally:
        for process in background:
            stop(process)
        with open(os.path.join(BIN, "spot-auth-sim")) as handle:
            assert os.path.realpath(BIN) in handle.readline(), "the copy's setup reinstalled into this venv"


def fleet_passwords(fleet_dir):
    with open(os.path.join(fleet_dir, "inventory.yml")) as handle:
        inventory = yaml.safe_load(handle)
    return {host["spot_password"] for host in inventory["all"]["children"]["spot"]["hosts"].values()}


def test_every_readme_command_has_a_rule():
    commands = readme_commands()
    assert ACTIVATE in commands[:4], "the activation line follows the README's first two commands"
    assert commands[:2] == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    unknown = [command for command in commands if how_to_run(command) is None]
    assert not unknown, "README commands this test does not know how to run (add them to COMMANDS): %s" % unknown


def test_ci_runs_the_readme_test_command():
    with open(os.path.join(REPO_ROOT, ".ci", "run")) as handle:
        ci = handle.read()
    assert re.search(r"^bash scripts/test\.sh$", ci, re.M), ".ci/run must run the README's test command"


def test_readme_commands_work_as_printed(readme_run):
    checkout, fleet_dir, results = readme_run
    secrets = fleet_passwords(fleet_dir)
    ran = [command for command, how, result in results if result is not None]
    assert any(command.startswith("ansible-playbook spot.auth.rotate") for command in ran)
    for command, how, result in results:
        if result is None:
            continue
        output = result.stdout + result.stderr
        assert result.returncode == 0, "README command failed as printed (rc %d): %s\n%s" % (
            result.returncode, command, output[-3000:])
        assert not any(secret in output for secret in secrets), "a password appears in the output of: %s" % command
        if how == "help":
            assert "usage" in output.lower(), "no usage text from: %s" % command
        elif "ansible-playbook" in command:
            assert re.search(r"PLAY RECAP", result.stdout), command
            assert not re.search(r"\bfailed=[1-9]|\bunreachable=[1-9]", result.stdout), (command, result.stdout[-2000:])
        elif command.startswith("ansible-doc"):
            # ansible-doc warns and still exits 0 when it cannot find the plugin.
            assert "WARNING" not in result.stderr, (command, result.stderr)
            found = re.search(r"\((/[^)]+/token\.py)\)", result.stdout)
            assert found, result.stdout[:300]
            assert os.path.realpath(found.group(1)) == os.path.join(os.path.realpath(checkout), "plugins", "modules", "token.py")
    for generator in ("scripts/generate_wire.py", "scripts/generate_error_reference.py"):
        check = run([tool("python"), generator, "--check"], cwd=checkout)
        assert check.returncode == 0, check.stdout + check.stderr


# What the built collection holds; every other file of the checkout stays out. Mirrors galaxy.yml's manifest.
SHIPPED = re.compile(r"(README\.md|COPYING|galaxy\.yml|requirements\.txt|LICENSES/.+\.txt|meta/.+\.yml"
                     r"|plugins/.+\.py|roles/.+\.(yml|j2)|playbooks/.+\.yml|docs/.+\.(md|yml)|protos/.+\.proto"
                     r"|changelogs/(changelog|config)\.yaml|awx/.+\.yml"
                     r"|simulator/(README\.md|pyproject\.toml|spot_auth_sim/.+\.py))")
USER_FILES = {
    "site.yml": "- hosts: spot\n  tasks: []\n",
    "inventory.yml": "spot:\n  hosts:\n    robot-001:\n      spot_password: hunter2-user-file\n",
    "hosts.ini": "[spot]\nrobot-001 spot_password=hunter2-user-file\n",
    "group_vars/spot.yml": "spot_password: hunter2-user-file\n",
    "robot-001.admin.jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.user-file\n",
    "rotate-report.json": "{}\n",
    ".vault_pass": "hunter2-user-file\n",
    "ansible.log": "user log\n",
    "notes.md": "my notes\n",
}


def test_tarball_holds_only_the_collection(readme_run, tmp_path):
    checkout, _fleet_dir, _results = readme_run
    assert os.path.isfile(os.path.join(checkout, "spot-auth", "tokens.json")), "the README's provision play ran here"
    for name, content in USER_FILES.items():
        path = os.path.join(checkout, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(content)
    left_by_plays = sorted(os.path.relpath(os.path.join(top, name), checkout)
                           for top, _dirs, names in os.walk(os.path.join(checkout, "spot-auth")) for name in names)

    built = run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), checkout],
                cwd=str(tmp_path))
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = [name for name in os.listdir(str(tmp_path)) if name.endswith(".tar.gz")]
    with tarfile.open(str(tmp_path / tarball)) as archive:
        members = {member.name for member in archive.getmembers() if not member.isdir()}

    expected = {name for name in checkout_files() if SHIPPED.fullmatch(name)} | {"MANIFEST.json", "FILES.json"}
    unexpected = sorted(members - expected)
    missing = sorted(expected - members)
    assert not unexpected, "the tarball carries files that are not the collection's: %s" % unexpected
    assert not missing, "the tarball lacks files of the collection: %s" % missing
    assert left_by_plays and not set(left_by_plays) & members
    assert not set(USER_FILES) & members
    for required in ("plugins/modules/token.py", "roles/provision/templates/junit.xml.j2", "meta/runtime.yml", "docs/docsite/links.yml",
                     "simulator/spot_auth_sim/cli.py", "LICENSES/GPL-3.0-or-later.txt"):
        assert required in members


def test_home_check_allows_only_what_the_readme_names(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_home", os.path.join(REPO_ROOT, "scripts", "check_home.py"))
    check_home = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_home)
    with open(os.path.join(REPO_ROOT, "README.md")) as handle:
        readme = handle.read()
    for cache in check_home.NAMED_CACHES:
        assert "`~/%s`" % cache.rstrip("/") in readme, "the README must name ~/%s" % cache
        path = tmp_path / cache
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if cache.endswith("/") else path.write_text("x")
    assert check_home.unexpected_entries(str(tmp_path)) == []
    (tmp_path / ".ansible" / "tmp").mkdir(parents=True)
    (tmp_path / ".cache" / "molecule").mkdir()
    (tmp_path / "antsibull.log").write_text("x")
    assert check_home.unexpected_entries(str(tmp_path)) == [".ansible/", ".cache/molecule/", "antsibull.log"]
