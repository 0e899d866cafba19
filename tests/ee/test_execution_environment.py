# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plays inside the execution-environment image, against simulated fleets on 127.0.0.1.

The image is localhost/spot-auth-ee:<galaxy.yml version>, built beforehand by scripts/build_ee.sh (in
scripts/test.sh, the step before this one); these tests fail, naming that script, when it is missing.

- ansible-navigator, run from the repository root with its ansible-navigator.yml, runs playbooks/demo.yml
  (robot-004 fails with InvalidLoginError on purpose) and playbooks/rotate.yml (twice: the token cache,
  on a directory mounted into the container, outlives the first container) in the image.
- ansible-runner runs playbooks/rotate.yml and playbooks/provision.yml the way AWX runs a job (see
  awx_job.py): a private data directory with an inventory script without usernames, passwords or CA,
  the job's extra variables, and the Spot credential of awx/credential_type.yml injected as AWX injects a
  custom credential; process isolation with Podman and the image.

The simulated robots' own records show that every login reached them, with the outcome the play reports.

Every output of every run is searched for every robot password, every token the runs cached, and
anything token-shaped (also inside the base64 event data ansible-runner hides in stdout, and in JSON
escaping): of ansible-navigator, its stdout and stderr, its log, its playbook artifact and its
ansible-runner directory (artifacts/<uuid>/: stdout, command, env.list, ...); of the AWX-style jobs, the
whole private data directory, ansible-runner's artifacts/<job>/ (job_events/*.json, stdout, ...) included;
and what the roles write (reports, JUnit XML). Excepted are the files that hold a secret by design, and
only from the search for that kind of secret:

- env/envvars of a job's private data directory: the job's environment, where the credential's ``env``
  injectors put BOSDYN_CLIENT_PASSWORD; that is how AWX hands the credential to the job;
- artifacts/<job>/command and artifacts/<job>/env.list of that directory: ansible-runner's record of the
  command and its environment, and the KEY=VALUE file it hands to ``podman run --env-file``; it writes
  both for every containerised run, so both hold the injected password. (AWX removes the private data
  directory after the job and keeps the job's output from its events and stdout, which are searched.)
  ansible-navigator's runs are searched without this exception: their passwords are in the inventory;
- the token caches and the provision role's tokens.json: they exist to hold tokens (they are searched
  for passwords all the same, and their tokens are searched for everywhere else).

The credential's other files (the CA file and the extra-variables file with its path) are searched like
the rest. test_secret_search_finds_what_it_must shows the search fails when a secret is where it must
not be.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import glob
import json
import os
import re
import secrets as token_generator
import subprocess

import pytest
import yaml

from awx_job import AwxJob
from ee_helpers import (IMAGE_COLLECTIONS, JWT_SHAPE, REPO_ROOT, VERSION, NavigatorRun, find_secrets, kind_of, navigator_exec,
                        navigator_run, plain, read_text, search_tree, text_leaks)
from spot_auth_sim.testing import inventory_without_credentials

pytestmark = pytest.mark.timeout(900)

ROBOTS = ["robot-%03d" % number for number in range(1, 9)]
CREDENTIAL_TYPE = os.path.join(REPO_ROOT, "awx", "credential_type.yml")
# A directory of the job containers that outlives them (a persistent volume, as docs/rotation-and-provisioning.md advises).
VOLUME = "/var/lib/spot-auth"

# The roles' argument spec validation names the role's directory: the image's collection, not the checkout.
ARG_SPEC_TASK = "Validating arguments against arg spec 'main' - ..."
IMAGE_ROLE = IMAGE_COLLECTIONS + "/ansible_collections/spot/auth/roles/%s"

DEMO_OK = re.compile(r"^robot-\d{3}  OK      token expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, re-minted: True$")
DEMO_REFUSED = re.compile(r"^robot-004  FAILED  InvalidLoginError +127\.0\.0\.1:\d+: the robot rejected the username or password")


def records(fleet):
    """{robot: [(kind, outcome), ...]} of the requests each simulated robot received."""
    return {robot.name: [(record["kind"], record["outcome"]) for record in fleet.control.requests(robot.name)["requests"]]
            for robot in fleet.robots}


def cached_tokens(directory, secrets, label):
    """{file name: token} of a token cache directory; each token joins ``secrets`` and must be JWT-shaped."""
    tokens = {}
    for path in sorted(glob.glob(os.path.join(str(directory), "*.jwt"))):
        token = read_text(path).strip()
        assert JWT_SHAPE.fullmatch(token), "%s does not hold a JWT-shaped token: the token search would miss it" % path
        tokens[os.path.basename(path)] = token
        secrets["token %s (%s)" % (os.path.basename(path), label)] = token
    return tokens


def summary_of(results):
    """The summary lines of a role's "Show the summary" task, from {host: res}."""
    assert len(results) == 1, results
    return list(results.values())[0]["msg"]


def artifact_results(artifact, task_name):
    """{host: res} of the task named ``task_name`` in an ansible-navigator playbook artifact."""
    return {task["host"]: task["res"] for play in artifact["plays"] for task in play["tasks"] if task["task"] == task_name}


# --------------------------------------------------------------------------------------------
# The search itself


def test_secret_search_finds_what_it_must(tmp_path):
    """Planted secrets are found, in every form the runs can write them, and only allowed kinds are let through."""
    password = "pw-" + token_generator.token_urlsafe(12)
    quoted = 'pw"with\\escapes-' + token_generator.token_hex(4)
    token = "eyJhbGciOiJFUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJlLW9mLWEtdGVzdA"
    secrets = {"password planted": password, "password quoted": quoted}

    assert find_secrets("nothing here", secrets) == []
    assert find_secrets("login with %s failed" % password, secrets) == ["password planted"]
    assert find_secrets(json.dumps({"msg": quoted}), secrets) == ["password quoted"]
    assert find_secrets("cached " + token, secrets) == ["token-shaped eyJhbGciOiJF..."]
    # ansible-runner's stdout hides event metadata as base64 between escape sequences.
    hidden = "\x1b[K%s\x1b[64D\x1b[K" % base64.b64encode(json.dumps({"pw": password}).encode()).decode()
    assert find_secrets("ok: [robot-001]" + hidden, secrets) == ["password planted"]
    assert plain("ok: [robot-001]" + hidden) == "ok: [robot-001]"

    root = tmp_path / "artifacts"
    (root / "1" / "job_events").mkdir(parents=True)
    (root / "1" / "job_events" / "7-abc.json").write_text(json.dumps({"event_data": {"res": {"msg": quoted}}}))
    (root / "1" / "stdout").write_text("ok\n")
    (root / "1" / "env.list").write_text("BOSDYN_CLIENT_PASSWORD=%s\n" % password)
    (root / "1" / "tokens.json").write_text(json.dumps({"robot-001": token}))
    (root / password).write_text("")
    leaks = search_tree(str(root), secrets)
    assert leaks == {"1/job_events/7-abc.json": ["password quoted"], "1/env.list": ["password planted"],
                     "1/tokens.json": ["token-shaped eyJhbGciOiJF..."], password: ["password planted"]}
    assert not [finding for findings in leaks.values() for finding in findings if password in finding or quoted in finding], \
        "findings name secrets, they never quote them"
    allowed = {"1/env.list": {"password"}, "1/tokens.json": {"token"}, "1/job_events/7-abc.json": {"token"}}
    assert search_tree(str(root), secrets, allowed) == {"1/job_events/7-abc.json": ["password quoted"], password: ["password planted"]}
    assert text_leaks({"stdout": "ok", "stderr": "oops " + password}, secrets) == {"stderr": ["password planted"]}

    # Each thing an ansible-navigator run leaves is searched.
    out_dir = tmp_path / "navigator"
    events = out_dir / "ansible-runner" / "artifacts" / "0f1e" / "job_events"
    events.mkdir(parents=True)
    (events / "3-0f1e.json").write_text(json.dumps({"stdout": quoted}))
    (out_dir / "ansible-navigator.log").write_text("DEBUG " + token)
    (out_dir / "playbook-artifact.json").write_text(json.dumps({"stdout": ["ok"]}))
    navigator = NavigatorRun(subprocess.CompletedProcess([], 0, "ok: " + password, ""), str(out_dir))
    assert navigator.leaks(secrets) == {"stdout": ["password planted"], "ansible-navigator log": ["token-shaped eyJhbGciOiJF..."],
                                        "ansible-runner artifacts/0f1e/job_events/3-0f1e.json": ["password quoted"]}
    (out_dir / "playbook-artifact.json").write_text(json.dumps({"stdout": ["ok: " + quoted]}))
    assert navigator.leaks(secrets)["playbook artifact"] == ["password quoted"]


# --------------------------------------------------------------------------------------------
# ansible-navigator


def test_navigator_runs_the_image_collection(navigator, tmp_path):
    """From the checkout, with the tests' options, the container finds the image's spot.auth (galaxy.yml's version) only."""
    result = navigator_exec(str(tmp_path / "navigator"), "ansible-galaxy", "collection", "list", "spot.auth", "--format", "json")
    assert result.returncode == 0, result.describe()
    listing = json.loads(result.plain_stdout[result.plain_stdout.index("{"):])
    assert listing == {IMAGE_COLLECTIONS + "/ansible_collections": {"spot.auth": {"version": VERSION}}}, listing


def test_demo_through_navigator(navigator, fleet_factory, secrets, tmp_path):
    fleet = fleet_factory("fleet")
    result = navigator_run(str(tmp_path / "navigator"), "playbooks/demo.yml", fleet.inventory_path, playbook_args=["-vvvv"])
    assert result.leaks(secrets) == {}
    assert result.returncode == 0, result.describe()

    lines = summary_of(artifact_results(result.artifact(), "Print the outcome per robot"))
    assert [line.split()[0] for line in lines] == ROBOTS, lines
    for line in lines:
        pattern = DEMO_REFUSED if line.startswith("robot-004") else DEMO_OK
        assert pattern.match(line), line
        assert json.dumps(line) in result.plain_stdout, "the line is not on ansible-navigator's stdout: %s" % line

    received = records(fleet)
    assert received.pop("robot-004") == [("password", "STATUS_INVALID_LOGIN")]
    assert received == {robot: [("password", "STATUS_OK"), ("token", "STATUS_OK")] for robot in ROBOTS if robot != "robot-004"}


def test_rotate_through_navigator(navigator, fleet_factory, secrets, tmp_path):
    """Two scheduled runs: the second re-mints the tokens the first cached on the mounted directory."""
    fleet = fleet_factory("fleet")
    output = tmp_path / "rotate-output"
    output.mkdir()
    runs = []
    for number, counts in enumerate(("0 refreshed, 8 re-logged-in", "8 refreshed, 0 re-logged-in"), 1):
        result = navigator_run(str(tmp_path / ("navigator-%d" % number)), "playbooks/rotate.yml", fleet.inventory_path,
                               navigator_args=["--eev", "%s:%s" % (output, output)],
                               playbook_args=["-e", "rotate_output_dir=%s" % output, "-vvvv"])
        assert result.leaks(secrets) == {}
        assert result.returncode == 0, result.describe()
        summary = summary_of(artifact_results(result.artifact(), "Show the summary"))
        assert summary == [
            "spot.auth.rotate: 8 robots: %s, 0 kept, 0 failed (0.0 %% of the fleet; the play fails above 0.0 %%: passed)" % counts,
            "token cache: %s/tokens" % output,
            "report: %s/rotate-report.json" % output,
        ], result.describe()
        assert summary[0] in result.plain_stdout
        validated = [task["res"]["validate_args_context"]["path"] for play in result.artifact()["plays"] for task in play["tasks"]
                     if "validate_args_context" in task["res"]]
        assert validated and set(validated) == {IMAGE_ROLE % "rotate"}, validated
        with open(str(output / "rotate-report.json")) as handle:
            report = json.load(handle)
        assert sorted(report["robots"]) == ROBOTS and report["passed"] is True
        runs.append(result)

    assert report["counts"] == {"refreshed": 8, "relogged_in": 0, "kept": 0, "failed": 0}
    assert records(fleet) == {robot: [("password", "STATUS_OK"), ("token", "STATUS_OK")] for robot in ROBOTS}
    tokens = cached_tokens(output / "tokens", secrets, "rotate")
    assert sorted(tokens) == ["spot-sim-%04d.admin.jwt" % number for number in range(1, 9)]

    for result in runs:  # again, with the tokens now known
        assert result.leaks(secrets) == {}
    assert search_tree(str(output), secrets, {os.path.join("tokens", name): {"token"} for name in tokens}) == {}


# --------------------------------------------------------------------------------------------
# ansible-runner, as AWX runs a job


@pytest.fixture(scope="module")
def credential_type():
    with open(CREDENTIAL_TYPE) as handle:
        return yaml.safe_load(handle)


@pytest.fixture
def awx_fleet(fleet_factory, tmp_path):
    """A fleet whose robots share one password, and its inventory as AWX would hold it: no credentials, no CA."""
    fleet = fleet_factory("fleet", args=["--password", "pw-" + token_generator.token_urlsafe(12)])
    return fleet, inventory_without_credentials(fleet.inventory_path)


def awx_job(tmp_path, job_id, playbook, fleet, inventory, credential_type, extra_vars):
    """A job of ``playbook`` with the Spot credential for the fleet's password and CA, and a persistent volume."""
    volume = tmp_path / "volume"
    volume.mkdir(exist_ok=True)
    inputs = {"username": "admin", "password": fleet.robots[0].password, "ca_cert": fleet.ca_pem.decode()}
    job = AwxJob(str(tmp_path), job_id, os.path.join(REPO_ROOT, "playbooks", playbook), inventory, credential_type, inputs,
                 extra_vars, volume_mounts=[(str(volume), VOLUME)])
    with open(job.credential_files["template.ca_cert"]) as handle:
        assert handle.read() == inputs["ca_cert"], "the CA file holds the credential's CA"
    inventory_text = read_text(job.inventory_path)
    assert "spot_password" not in inventory_text and "spot_username" not in inventory_text and "spot_ca_cert" not in inventory_text
    assert fleet.robots[0].password not in inventory_text
    return job, volume


def check_job(job, secrets, role, outcome):
    """The job succeeded, with ``outcome`` for every robot, the image's role, and the credential where AWX puts it."""
    runner = job.run()
    assert_job_holds_no_secret(job, secrets)
    assert (runner.status, runner.rc) == ("successful", 0), job.describe()
    stats = job.stats()
    assert sorted(stats["ok"]) == ROBOTS, stats
    for kind in ("failures", "dark", "ignored", "rescued"):
        assert not stats.get(kind), (kind, stats)
    validated = list(job.task_results(ARG_SPEC_TASK).values())
    assert validated and {result["validate_args_context"]["path"] for result in validated} == {IMAGE_ROLE % role}
    results = job.task_results("Record each robot's outcome")
    assert sorted(results) == ROBOTS, job.describe()
    for host, result in results.items():
        fact = result["ansible_facts"]["%s_result" % role]
        assert (fact["outcome"], fact["method"], fact["username"]) == (outcome, "password", "admin"), (host, fact)

    # The credential went where AWX puts it: the env injectors in env/envvars, the CA in a file of env/ whose
    # container path the injected extra variables name on the command line.
    ca_file = job.credential_files["template.ca_cert"]
    with open(os.path.join(job.dir, "env", "cmdline")) as handle:
        cmdline = handle.read()
    assert cmdline.startswith("-vvvv -e @/runner/env/tmp"), cmdline
    with open(os.path.join(job.dir, cmdline.split("@/runner/", 1)[1].strip())) as handle:
        assert handle.read() == "!unsafe 'spot_ca_cert': !unsafe '/runner/env/%s'\n" % os.path.basename(ca_file)
    envvars = read_text(os.path.join(job.dir, "env", "envvars"))
    assert json.loads(envvars)["BOSDYN_CLIENT_USERNAME"] == "admin"
    assert {kind_of(finding) for finding in find_secrets(envvars, secrets)} == {"password"}, \
        "env/envvars does not hold the password: the search would not see it"


def assert_job_holds_no_secret(job, secrets):
    """Nothing of the private data directory holds a secret, but for the files that hold the password by design."""
    by_design = {"env/envvars": {"password"},
                 os.path.join("artifacts", job.ident, "command"): {"password"},
                 os.path.join("artifacts", job.ident, "env.list"): {"password"}}
    assert search_tree(job.dir, secrets, by_design) == {}


def test_awx_rotate_job(awx_fleet, credential_type, secrets, tmp_path):
    fleet, inventory = awx_fleet
    job, volume = awx_job(tmp_path, 41, "rotate.yml", fleet, inventory, credential_type,
                          {"rotate_output_dir": VOLUME + "/rotate", "rotate_max_fail_percentage": 10})
    check_job(job, secrets, "rotate", "relogged_in")

    assert summary_of(job.task_results("Show the summary")) == [
        "spot.auth.rotate: 8 robots: 0 refreshed, 8 re-logged-in, 0 kept, 0 failed (0.0 % of the fleet; the play fails above 10.0 %: passed)",
        "token cache: %s/rotate/tokens" % VOLUME,
        "report: %s/rotate/rotate-report.json" % VOLUME,
    ]
    with open(str(volume / "rotate" / "rotate-report.json")) as handle:
        report = json.load(handle)
    assert report["counts"] == {"refreshed": 0, "relogged_in": 8, "kept": 0, "failed": 0}
    assert {robot["username"] for robot in report["robots"].values()} == {"admin"}
    assert records(fleet) == {robot: [("password", "STATUS_OK")] for robot in ROBOTS}

    tokens = cached_tokens(volume / "rotate" / "tokens", secrets, "rotate")
    assert len(tokens) == 8
    assert_job_holds_no_secret(job, secrets)  # again, with the tokens now known
    assert search_tree(str(volume), secrets, {os.path.join("rotate", "tokens", name): {"token"} for name in tokens}) == {}


def test_awx_provision_job(awx_fleet, credential_type, secrets, tmp_path):
    fleet, inventory = awx_fleet
    job, volume = awx_job(tmp_path, 42, "provision.yml", fleet, inventory, credential_type,
                          {"provision_output_dir": VOLUME + "/provision"})
    check_job(job, secrets, "provision", "logged_in")

    output = VOLUME + "/provision"
    assert summary_of(job.task_results("Show the summary")) == [
        "spot.auth.provision: 8 robots: 8 logged in, 0 re-minted, 0 reused from the cache, 0 failed"
        " (0.0 % of the fleet; the play fails above 0.0 %: usable)",
        "token cache: %s/token-cache" % output,
        "tokens file: %s/tokens.json" % output,
        "report: %s/report.json" % output,
        "junit: %s/junit.xml" % output,
    ]
    output = volume / "provision"
    with open(str(output / "report.json")) as handle:
        report = json.load(handle)
    assert sorted(report["robots"]) == ROBOTS and report["passed"] is True
    assert {robot["outcome"] for robot in report["robots"].values()} == {"logged_in"}
    assert records(fleet) == {robot: [("password", "STATUS_OK")] for robot in ROBOTS}

    tokens = cached_tokens(output / "token-cache", secrets, "provision")
    assert len(tokens) == 8
    with open(str(output / "tokens.json")) as handle:
        handed_on = json.load(handle)
    assert sorted(handed_on) == ROBOTS and {entry["token"] for entry in handed_on.values()} == set(tokens.values())
    assert "<testcase" in read_text(str(output / "junit.xml"))
    assert_job_holds_no_secret(job, secrets)  # again, with the tokens now known
    allowed = {os.path.join("provision", "token-cache", name): {"token"} for name in tokens}
    allowed["provision/tokens.json"] = {"token"}
    assert search_tree(str(volume), secrets, allowed) == {}
