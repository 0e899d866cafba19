# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A job laid out and started the way AWX does it, then run by ansible-runner with Podman.

Each step follows AWX's own code (ansible/awx):

- the private data directory (``BaseTask.build_private_data_dir``, awx/main/tasks/jobs.py): a 0700
  directory ``awx_<job id>_XXXXXX`` with ``project/``, ``inventory/`` and ``env/``;
- the inventory (``BaseTask.build_inventory``): ``inventory/hosts``, mode 0700, a Python script that
  prints the inventory's JSON (``Inventory.get_script_data(hostvars=True, towervars=True)``: one key per
  group with its hosts and vars, ``_meta.hostvars`` with ``remote_tower_enabled`` per host);
- the job's extra variables (``BaseTask._write_extra_vars_file``): ``env/extravars``, mode 0400, in AWX's
  ``safe_dump`` form (awx/main/utils/safe_yaml.py), every string, keys too, tagged ``!unsafe``;
- the credential (``CredentialType.inject_credential``, awx/main/models/credential/__init__.py): inputs
  rendered in Jinja's ImmutableSandboxedEnvironment, empty strings left out of the namespace; each
  ``file`` injector written to ``tempfile.mkstemp(dir=<private data dir>/env)``, mode 0600, its path
  inside the container (``to_container_path``, awx/main/utils/execution_environments.py: the private
  data directory is /runner) becoming ``tower.filename.<name>``; the ``env`` injectors added to the job's
  environment; the ``extra_vars`` injectors written by ``safe_dump`` to another mkstemp file in env/,
  mode 0400, passed as ``-e @/runner/env/<file>`` on the command line;
- the command line (``BaseTask.write_args_file``): ``env/cmdline``, mode 0400;
- the environment: AWX passes it to ansible-runner as ``envvars``, which ansible-runner keeps in
  ``env/envvars`` (``dump_artifacts``); it is written there directly, mode 0600;
- the execution environment (``BaseTask.build_execution_environment_params``): process isolation with
  podman, the image, ``--user=root`` first among the container options, ``--pull=never`` (the execution
  environment's pull policy), AWX_ISOLATION_SHOW_PATHS-style volume mounts (``src:dest:z``); here in
  ``env/settings`` with the job timeout and ``suppress_ansible_output`` as AWX sets them.

ansible-runner mounts the whole private data directory at /runner, so the credential's files in env/ are
in the container at the paths the injectors gave. Left out: what needs AWX's database or services
(callback receiver, receptor, fact cache), AWX's collection and role path variables (the job has no
project requirements, and the image's own collection is under test), and ``suppress_output_file``,
which AWX sets: ansible-runner's stdout file is kept so that it can be searched.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import shutil
import stat
import tempfile

import ansible_runner
import yaml
from ansible_runner.utils import args2cmdline
from jinja2 import sandbox

from ee_helpers import IMAGE, JOB_TIMEOUT, PODMAN_OPTIONS, redact

CONTAINER_ROOT = "/runner"
IDLE_TIMEOUT = 120


class TowerNamespace:
    """The ``tower`` object of AWX's injector namespace (``tower.filename`` or ``tower.filename.<name>``)."""


def to_container_path(path, private_data_dir):
    """A path under the private data directory, as the job's container sees it."""
    private_data_dir = os.path.normpath(private_data_dir)
    path = os.path.normpath(path)
    assert path == private_data_dir or path.startswith(private_data_dir + os.sep), path
    return CONTAINER_ROOT + path[len(private_data_dir):]


class UnsafeStringDumper(yaml.SafeDumper):
    """Every string, mapping keys included, as ``!unsafe``: Ansible never templates such a value."""

    def represent_data(self, data):
        if isinstance(data, str):
            return self.represent_scalar("!unsafe", data)
        return super(UnsafeStringDumper, self).represent_data(data)


def safe_dump(variables):
    """AWX's safe_dump of extra variables: one YAML document per top-level variable, all strings unsafe."""
    return "".join(yaml.dump_all([{name: value}], Dumper=UnsafeStringDumper, default_flow_style=False)
                   for name, value in variables.items())


def write_private_file(path, text, mode):
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def private_data_dir(parent, job_id):
    path = tempfile.mkdtemp(prefix="awx_%d_" % job_id, dir=str(parent))
    os.chmod(path, stat.S_IRWXU)
    for subfolder in ("project", "inventory", "env"):
        os.mkdir(os.path.join(path, subfolder))
    return path


def inject_credential(credential_type, inputs, env, args, job_dir):
    """Render a custom credential type's injectors for ``inputs`` into ``env``, ``args`` and files in env/.

    Returns {file injector name: host path of the rendered file}.
    """
    injectors = credential_type.get("injectors", {})
    tower = TowerNamespace()
    namespace = {"tower": tower}
    for name, value in inputs.items():
        if isinstance(value, bool) or len(value):
            namespace[name] = value
    for field in credential_type["inputs"].get("fields", []):
        if field.get("type") == "boolean" and field["id"] not in inputs:
            namespace[field["id"]] = False
        if field.get("format") == "ssh_private_key" and field["id"] in namespace and not namespace[field["id"]].endswith("\n"):
            namespace[field["id"]] += "\n"

    environment = sandbox.ImmutableSandboxedEnvironment()
    env_dir = os.path.join(job_dir, "env")
    files = {}
    for label, template in injectors.get("file", {}).items():
        handle, path = tempfile.mkstemp(dir=env_dir)
        os.close(handle)
        write_private_file(path, environment.from_string(template).render(**namespace), stat.S_IRUSR | stat.S_IWUSR)
        container_path = to_container_path(path, job_dir)
        if "." not in label:
            tower.filename = container_path
        else:
            if not hasattr(tower, "filename"):
                tower.filename = TowerNamespace()
            setattr(tower.filename, label.split(".", 1)[1], container_path)
        files[label] = path

    for name, template in injectors.get("env", {}).items():
        env[name] = environment.from_string(template).render(**namespace)

    def render(node):
        if isinstance(node, dict):
            return {render(key): render(value) for key, value in node.items()}
        if isinstance(node, list):
            return [render(item) for item in node]
        return environment.from_string(node).render(**namespace)

    extra_vars = render(injectors.get("extra_vars", {}))
    if extra_vars:
        handle, path = tempfile.mkstemp(dir=env_dir)
        os.close(handle)
        write_private_file(path, safe_dump(extra_vars), stat.S_IRUSR)
        args.extend(["-e", "@%s" % to_container_path(path, job_dir)])
    return files


def inventory_script_data(inventory):
    """Inventory.get_script_data(hostvars=True, towervars=True) for a YAML inventory of groups under all.children."""
    groups = inventory["all"].get("children", {})
    data = {"all": {"children": sorted(groups), "hosts": []}, "_meta": {"hostvars": {}}}
    for group_name, group in groups.items():
        hosts = group.get("hosts") or {}
        data[group_name] = {"hosts": sorted(hosts), "vars": dict(group.get("vars") or {}), "children": []}
        for host_name, host_vars in hosts.items():
            data["_meta"]["hostvars"][host_name] = dict(host_vars or {}, remote_tower_enabled="true")
    return data


def write_inventory(job_dir, inventory):
    path = os.path.join(job_dir, "inventory", "hosts")
    script = "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(inventory_script_data(inventory))
    return write_private_file(path, script, stat.S_IRUSR | stat.S_IXUSR | stat.S_IWUSR)


class AwxJob:
    """One job: its private data directory, ready for ansible-runner, and afterwards its outcome."""

    def __init__(self, parent, job_id, playbook, inventory, credential_type, credential_inputs, extra_vars,
                 volume_mounts=(), verbosity=4):
        self.job_id = job_id
        self.ident = str(job_id)
        self.dir = private_data_dir(parent, job_id)
        self.playbook = os.path.basename(playbook)
        shutil.copy(playbook, os.path.join(self.dir, "project", self.playbook))
        self.inventory_path = write_inventory(self.dir, inventory)
        write_private_file(os.path.join(self.dir, "env", "extravars"), safe_dump(extra_vars), stat.S_IRUSR)

        # RunJob.build_env: the settings AWX passes to every job (the ones that matter without AWX's services).
        cp_dir = os.path.join(self.dir, "cp")
        os.mkdir(cp_dir, stat.S_IRWXU)
        env = {
            "ANSIBLE_FORCE_COLOR": "True",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
            "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
            "AWX_PRIVATE_DATA_DIR": self.dir,
            "JOB_ID": self.ident,
            "INVENTORY_ID": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "MAX_EVENT_RES": "700000",
            "ANSIBLE_SSH_CONTROL_PATH_DIR": CONTAINER_ROOT + "/cp",
        }
        args = ["-" + "v" * verbosity] if verbosity else []
        self.credential_files = inject_credential(credential_type, credential_inputs, env, args, self.dir)
        self.env = env
        write_private_file(os.path.join(self.dir, "env", "cmdline"), args2cmdline(*args), stat.S_IRUSR)
        write_private_file(os.path.join(self.dir, "env", "envvars"), json.dumps(env), stat.S_IRUSR | stat.S_IWUSR)
        settings = {
            "job_timeout": JOB_TIMEOUT,
            "idle_timeout": IDLE_TIMEOUT,
            "suppress_ansible_output": True,
            "process_isolation": True,
            "process_isolation_executable": "podman",
            "container_image": IMAGE,
            "container_options": ["--user=root"] + PODMAN_OPTIONS + ["--pull=never"],
            "container_volume_mounts": ["%s:%s:z" % (source, destination) for source, destination in volume_mounts],
        }
        write_private_file(os.path.join(self.dir, "env", "settings"), json.dumps(settings), stat.S_IRUSR | stat.S_IWUSR)
        self.runner = None

    @property
    def artifact_dir(self):
        return os.path.join(self.dir, "artifacts", self.ident)

    def run(self):
        """ansible_runner.run on the private data directory, as AWX's worker does; returns the Runner."""
        self.runner = ansible_runner.run(private_data_dir=self.dir, ident=self.ident, playbook=self.playbook,
                                         inventory=self.inventory_path, fact_cache_type="", quiet=True)
        return self.runner

    def events(self):
        """The job's events, as ansible-runner wrote them to artifacts/<ident>/job_events/, in order."""
        directory = os.path.join(self.artifact_dir, "job_events")
        events = []
        for name in os.listdir(directory):
            if name.endswith(".json") and "-partial" not in name:
                with open(os.path.join(directory, name)) as handle:
                    events.append(json.load(handle))
        return sorted(events, key=lambda event: event["counter"])

    def task_results(self, task_name):
        """{host: res} of the runner_on_ok events of the task named ``task_name`` (or ending with "...")."""
        def named(name):
            return name.startswith(task_name[:-3]) if task_name.endswith("...") else name == task_name

        return {event["event_data"]["host"]: event["event_data"]["res"] for event in self.events()
                if event["event"] == "runner_on_ok" and named(event["event_data"].get("task", ""))}

    def stats(self):
        stats = [event["event_data"] for event in self.events() if event["event"] == "playbook_on_stats"]
        assert len(stats) == 1, "the job has %d playbook_on_stats events" % len(stats)
        return stats[0]

    def stdout(self):
        with open(os.path.join(self.artifact_dir, "stdout"), encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def describe(self):
        status = None if self.runner is None else (self.runner.status, self.runner.rc)
        try:
            stdout = self.stdout()
        except OSError:
            stdout = "(no stdout)"
        return "job %s (status, rc) %s\n--- stdout (end)\n%s" % (self.ident, status, redact(stdout[-6000:]))
