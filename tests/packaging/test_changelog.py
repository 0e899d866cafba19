# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The changelog fragments make a valid release: antsibull-changelog release, run on a copy.

The fragments stay in changelogs/fragments until the release commit, which runs
``antsibull-changelog release`` in the work tree (that consumes them). This test runs the same
command on a copy, so a fragment that would break the release fails CI first.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os

import yaml

from packaging_helpers import REPO_ROOT, ansible_env, copy_collection, run, tool


def test_release_from_the_fragments(tmp_path):
    with open(os.path.join(REPO_ROOT, "galaxy.yml")) as handle:
        version = str(yaml.safe_load(handle)["version"])
    fragments = sorted(name for name in os.listdir(os.path.join(REPO_ROOT, "changelogs", "fragments")) if name.endswith((".yml", ".yaml")))
    assert fragments, "no changelog fragments"
    copy = copy_collection(tmp_path / "collections")
    env = ansible_env(tmp_path, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"))

    completed = run([tool("antsibull-changelog"), "release", "--version", version, "--date", "2000-01-01",
                     "--ansible-doc-bin", tool("ansible-doc")], env=env, cwd=copy)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    with open(os.path.join(copy, "changelogs", "changelog.yaml")) as handle:
        release = yaml.safe_load(handle)["releases"][version]
    assert sorted(release["fragments"]) == fragments
    assert release["changes"].get("release_summary"), "one fragment should carry the release_summary"
    assert {module["name"] for module in release.get("modules", [])} >= {"token"}
    assert {plugin["name"] for plugin in release.get("plugins", {}).get("lookup", [])} >= {"token"}

    with open(os.path.join(copy, "CHANGELOG.md")) as handle:
        changelog = handle.read()
    assert "## v%s" % version.replace(".", "\\.") in changelog
    assert "New Modules" in changelog and "spot\\.auth\\.token" in changelog

    completed = run([tool("antsibull-changelog"), "lint-changelog-yaml", "changelogs/changelog.yaml"], env=env, cwd=copy)
    assert completed.returncode == 0, completed.stdout + completed.stderr
