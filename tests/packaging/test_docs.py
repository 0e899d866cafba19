# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The guides in docs/: their YAML parses, their plays pass a syntax check, their links resolve."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re

import pytest
import yaml

from packaging_helpers import REPO_ROOT, ansible_env, run, tool

DOCS = os.path.join(REPO_ROOT, "docs")
GUIDES = ["authenticating-a-fleet.md", "awx.md", "error-reference.md"]
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
FQCN_KEY = re.compile(r"^\s*-?\s*([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:", re.M)
INSTALLED = {"ansible.builtin", "spot.auth"}


def read(name):
    with open(os.path.join(DOCS, name)) as handle:
        return handle.read()


def anchors(text):
    """GitHub's anchors of a markdown file's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def _checkable(block):
    """Plays that use only collections installed here (the AWX guide's awx.awx example is not)."""
    return not set(FQCN_KEY.findall(block)) - INSTALLED


def plays():
    found = []
    for name in GUIDES:
        for number, block in enumerate(YAML_BLOCK.findall(read(name)), 1):
            data = yaml.safe_load(block)
            is_play = isinstance(data, list) and data and all(isinstance(play, dict) and "hosts" in play for play in data)
            if is_play and _checkable(block):
                found.append(pytest.param(block, id="%s-%d" % (name, number)))
    return found


@pytest.mark.parametrize("name", GUIDES)
def test_yaml_blocks_parse(name):
    for block in YAML_BLOCK.findall(read(name)):
        yaml.safe_load(block)


@pytest.mark.parametrize("name", GUIDES)
def test_links_resolve(name):
    for target in LINK.findall(read(name)):
        if re.match(r"^[a-z]+://", target):
            continue
        path, _sep, fragment = target.partition("#")
        document = os.path.normpath(os.path.join(DOCS, path)) if path else os.path.join(DOCS, name)
        assert os.path.exists(document), "%s links to %s, which does not exist" % (name, target)
        if fragment:
            with open(document) as handle:
                assert fragment in anchors(handle.read()), "%s links to %s, which has no such heading" % (name, target)


@pytest.mark.parametrize("block", plays())
def test_plays_pass_a_syntax_check(block, tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(block)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"spot": {"hosts": {"robot-001": {}}}}}}))
    completed = run([tool("ansible-playbook"), "--syntax-check", "-i", str(inventory), str(playbook)], env=ansible_env(tmp_path))
    assert completed.returncode == 0, completed.stdout + completed.stderr
