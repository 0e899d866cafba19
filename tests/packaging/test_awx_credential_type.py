# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The AWX/AAP credential type in awx/: its structure, and a job run the way AWX injects it.

AWX renders the injectors with Jinja in a sandbox: each file template is written to a private file
whose path is ``tower.filename.<name>``, env injectors become the job's environment, and extra_vars
injectors go to a YAML file passed as ``-e @file`` with every value tagged ``!unsafe``. The tests do
the same with sample inputs, then run ansible-playbook against a simulated fleet whose inventory
holds no credentials.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re
import secrets
import stat
import textwrap

import jinja2
import pytest
import yaml
from jinja2 import meta, sandbox

from packaging_helpers import REPO_ROOT, ansible_env, run, tool

from ansible_collections.spot.auth.plugins.module_utils._root_ca import BOSTON_DYNAMICS_ROOT_CA_PEM
from spot_auth_sim.testing import SubprocessFleet, inventory_without_credentials

CREDENTIAL_TYPE = os.path.join(REPO_ROOT, "awx", "credential_type.yml")
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
FIELD_KEYS = {"id", "label", "type", "help_text", "secret", "multiline", "format", "choices", "default", "ask_at_runtime"}
STRING_ONLY_KEYS = {"secret", "multiline", "format", "choices"}
FILE_KEY = re.compile(r"^template(\.[a-zA-Z_][a-zA-Z0-9_]*)?$")


@pytest.fixture(scope="module")
def credential_type():
    with open(CREDENTIAL_TYPE) as handle:
        return yaml.safe_load(handle)


def fields_of(credential_type):
    return {field["id"]: field for field in credential_type["inputs"]["fields"]}


def test_inputs_are_well_formed(credential_type):
    assert set(credential_type) == {"name", "description", "kind", "inputs", "injectors"}
    assert credential_type["kind"] in ("cloud", "net"), "custom credential types must be cloud or net"
    inputs = credential_type["inputs"]
    assert set(inputs) <= {"fields", "required"}
    ids = [field["id"] for field in inputs["fields"]]
    assert len(ids) == len(set(ids)), "field ids must be unique"
    for field in inputs["fields"]:
        assert set(field) <= FIELD_KEYS, "unknown keys in field %s" % field["id"]
        assert NAME.match(field["id"]) and field["id"] != "tower"
        assert isinstance(field.get("label"), str) and field["label"]
        assert field.get("type", "string") in ("string", "boolean")
        if field.get("type", "string") != "string":
            assert not set(field) & STRING_ONLY_KEYS, "%s: only string fields can be secret, multiline, ..." % field["id"]
        for flag in ("secret", "multiline", "ask_at_runtime"):
            assert isinstance(field.get(flag, False), bool)
    assert set(inputs["required"]) <= set(ids)


def test_fields_the_collection_needs(credential_type):
    fields = fields_of(credential_type)
    assert set(fields) == {"username", "password", "ca_cert"}
    assert fields["password"].get("secret") is True
    assert not fields["username"].get("secret", False)
    assert fields["ca_cert"].get("multiline") is True
    assert not fields["ca_cert"].get("secret", False), "a CA certificate is public"
    assert set(credential_type["inputs"]["required"]) == {"username", "password"}


def test_injectors_reference_only_defined_inputs(credential_type):
    injectors = credential_type["injectors"]
    assert set(injectors) <= {"env", "file", "extra_vars"}
    file_keys = list(injectors.get("file", {}))
    assert all(FILE_KEY.match(key) for key in file_keys)
    assert not ("template" in file_keys and len(file_keys) > 1), "several files need the template.<name> form"
    for name, value in injectors.get("env", {}).items():
        assert NAME.match(name) and not name.startswith("ANSIBLE_"), name
        assert isinstance(value, str) and value.isascii()
    for name, value in injectors.get("extra_vars", {}).items():
        assert NAME.match(name) and isinstance(value, str)

    defined = set(fields_of(credential_type)) | {"tower"}
    environment = sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    namespace = dict.fromkeys(fields_of(credential_type), "EXAMPLE")
    namespace["tower"] = tower_namespace({key.split(".", 1)[1]: "/runner/env/EXAMPLE" for key in file_keys if "." in key})
    for kind, templates in injectors.items():
        for key, template in templates.items():
            used = meta.find_undeclared_variables(environment.parse(template))
            assert used <= defined, "%s %s uses undefined inputs %s" % (kind, key, sorted(used - defined))
            environment.from_string(template).render(namespace)  # StrictUndefined: tower.filename.<x> must exist


def test_injects_what_the_collection_reads(credential_type):
    injectors = credential_type["injectors"]
    assert injectors["env"] == {"BOSDYN_CLIENT_USERNAME": "{{ username }}", "BOSDYN_CLIENT_PASSWORD": "{{ password }}"}
    assert injectors["extra_vars"] == {"spot_ca_cert": "{{ tower.filename.ca_cert }}"}


def test_ca_file_defaults_to_the_boston_dynamics_root_ca(credential_type, tmp_path):
    _env, _extra_vars, files = inject(credential_type, {"username": "u", "password": "p"}, tmp_path / "empty")
    assert files["ca_cert"].read_text().strip() == BOSTON_DYNAMICS_ROOT_CA_PEM.strip()
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    _env, _extra_vars, files = inject(credential_type, {"username": "u", "password": "p", "ca_cert": pem}, tmp_path / "given")
    assert files["ca_cert"].read_text() == pem


class tower_namespace:
    """The ``tower`` object of AWX's injector namespace."""

    def __init__(self, filenames):
        self.filename = type("filenames", (), dict(filenames))()


def inject(credential_type, inputs, private_dir):
    """(env, extra-vars file, {file name: path}) as AWX builds them for a credential with ``inputs``."""
    private_dir.mkdir(parents=True)
    env_dir = private_dir / "env"
    env_dir.mkdir()
    environment = sandbox.ImmutableSandboxedEnvironment()
    # Like AWX: empty inputs are left out of the namespace, so "{% if ca_cert %}" is false for them.
    namespace = {key: value for key, value in inputs.items() if value}
    files = {}
    for key, template in credential_type["injectors"].get("file", {}).items():
        path = env_dir / ("file-" + key.replace(".", "-"))
        path.write_text(environment.from_string(template).render(**namespace))
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        files[key.split(".", 1)[1] if "." in key else ""] = path
    namespace["tower"] = tower_namespace({name: str(path) for name, path in files.items()})
    env = {name: environment.from_string(template).render(**namespace)
           for name, template in credential_type["injectors"].get("env", {}).items()}
    extra_vars = env_dir / "extra_vars.yml"
    extra_vars.write_text("".join("%s: !unsafe %s\n" % (name, json.dumps(environment.from_string(template).render(**namespace)))
                                  for name, template in credential_type["injectors"].get("extra_vars", {}).items()))
    return env, extra_vars, files


PLAYBOOK = """\
- name: Authenticate with nothing but what the credential injects
  hosts: spot
  gather_facts: false
  tasks:
    - name: Log in
      spot.auth.token:
      register: login
      ignore_errors: true

    - name: Record the outcome, without the token
      ansible.builtin.copy:
        dest: "{{ results_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
        content: >-
          {{ {'failed': login.failed | default(false),
              'error_type': login.error_type | default(none),
              'method': spot_auth.method | default(none),
              'username': spot_auth.username | default(none),
              'token_length': spot_auth.token | default('') | length,
              'ca_cert': spot_ca_cert | default(none)} | to_json }}
      delegate_to: localhost
"""


@pytest.fixture
def fleet(tmp_path):
    """Two simulated robots with one password; an inventory without usernames, passwords or CA."""
    password = "pw-" + secrets.token_urlsafe(12)
    out = tmp_path / "fleet"
    out.mkdir()
    with SubprocessFleet(robots=2, args=["--password", password, "--rate-limit", "0"], out_dir=str(out)) as sim:
        bare = tmp_path / "inventory.yml"
        bare.write_text(yaml.safe_dump(inventory_without_credentials(sim.inventory_path)))
        assert password not in bare.read_text()
        yield sim, str(bare), password


def run_job(tmp_path, inventory, env, extra_vars, secret):
    results = tmp_path / "results"
    results.mkdir()
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent(PLAYBOOK))
    completed = run([tool("ansible-playbook"), "-v", "-i", inventory, str(playbook), "-e", "@%s" % extra_vars,
                     "-e", "results_dir=%s" % results], env=ansible_env(tmp_path, ANSIBLE_FORKS="5", **env), cwd=str(tmp_path))
    assert secret not in completed.stdout + completed.stderr, "the password appears in the job output"
    outcome = {path.stem: json.loads(path.read_text()) for path in results.iterdir()}
    assert set(outcome) == {"robot-001", "robot-002"}, completed.stdout + completed.stderr
    return completed, outcome


def test_job_gets_tokens_from_the_injected_credential(credential_type, fleet, tmp_path):
    sim, inventory, password = fleet
    inputs = {"username": "admin", "password": password, "ca_cert": sim.ca_pem.decode()}
    env, extra_vars, files = inject(credential_type, inputs, tmp_path / "private")
    assert env == {"BOSDYN_CLIENT_USERNAME": "admin", "BOSDYN_CLIENT_PASSWORD": password}

    completed, outcome = run_job(tmp_path, inventory, env, extra_vars, password)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    for host, result in outcome.items():
        assert result["failed"] is False, (host, result)
        assert result["method"] == "password" and result["username"] == "admin"
        assert result["token_length"] > 100
        assert result["ca_cert"] == str(files["ca_cert"])
    for robot in sim.robots:
        records = sim.control.requests(robot.name)["requests"]
        assert [record["outcome"] for record in records] == ["STATUS_OK"]


def test_job_without_a_ca_trusts_only_the_boston_dynamics_root(credential_type, fleet, tmp_path):
    """No CA in the credential: the simulator's certificates (not from Boston Dynamics) are refused."""
    sim, inventory, password = fleet
    env, extra_vars, _files = inject(credential_type, {"username": "admin", "password": password, "ca_cert": ""}, tmp_path / "private")

    completed, outcome = run_job(tmp_path, inventory, env, extra_vars, password)
    assert completed.returncode == 0, completed.stdout + completed.stderr  # ignore_errors
    for host, result in outcome.items():
        assert result["failed"] is True and result["error_type"] == "CertificateVerificationError", (host, result)
    for robot in sim.robots:
        assert sim.control.requests(robot.name)["count"] == 0, "no request may reach a robot that is not trusted"
