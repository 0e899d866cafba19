# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ansible-doc renders every plugin and role of the collection, each with examples."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import re

import pytest
import yaml

from packaging_helpers import REPO_ROOT, ansible_env, run, tool

# plugins/<directory> -> ansible-doc's plugin type; other directories (action, doc_fragments, module_utils) have no docs of their own.
DOC_TYPES = {
    "modules": "module", "lookup": "lookup", "filter": "filter", "test": "test", "inventory": "inventory",
    "callback": "callback", "connection": "connection", "become": "become", "cache": "cache", "vars": "vars", "strategy": "strategy",
}
# Roles the collection is meant to have: a missing directory is skipped, a present one must be documented.
EXPECTED_ROLES = ("rotate", "provision")


def plugins():
    found = []
    for directory, plugin_type in sorted(DOC_TYPES.items()):
        path = os.path.join(REPO_ROOT, "plugins", directory)
        for name in sorted(os.listdir(path)) if os.path.isdir(path) else []:
            if name.endswith(".py") and not name.startswith("_"):
                found.append((plugin_type, name[:-3]))
    return found


def roles():
    present = sorted(os.listdir(os.path.join(REPO_ROOT, "roles"))) if os.path.isdir(os.path.join(REPO_ROOT, "roles")) else []
    return sorted(set(EXPECTED_ROLES) | set(present))


def ansible_doc(tmp_path, *args):
    completed = run([tool("ansible-doc")] + list(args), env=ansible_env(tmp_path, ANSIBLE_DEPRECATION_WARNINGS="True"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "[WARNING]" not in completed.stderr and "[ERROR]" not in completed.stderr, completed.stderr
    assert "[DEPRECATION WARNING]" not in completed.stderr, completed.stderr
    return completed.stdout


def test_the_collection_has_plugins():
    assert ("module", "token") in plugins()
    assert ("lookup", "token") in plugins()


@pytest.mark.parametrize("plugin_type, name", plugins())
def test_plugin_renders_with_examples(tmp_path, plugin_type, name):
    text = ansible_doc(tmp_path, "-t", plugin_type, "spot.auth." + name)
    assert "spot.auth.%s" % name in text
    assert "EXAMPLES:" in text
    data = json.loads(ansible_doc(tmp_path, "--json", "-t", plugin_type, "spot.auth." + name))["spot.auth." + name]
    assert data["doc"]["short_description"]
    assert data["doc"].get("version_added"), "version_added tells users (and the changelog) when it arrived"
    examples = yaml.safe_load(data["examples"])
    assert isinstance(examples, list) and examples, "EXAMPLES must be a non-empty YAML list"


@pytest.mark.parametrize("role", roles())
def test_role_renders_with_examples(tmp_path, role):
    directory = os.path.join(REPO_ROOT, "roles", role)
    if not os.path.isdir(directory):
        pytest.skip("roles/%s does not exist" % role)
    specs = os.path.join(directory, "meta", "argument_specs.yml")
    assert os.path.isfile(specs), "roles/%s needs meta/argument_specs.yml for ansible-doc" % role
    text = ansible_doc(tmp_path, "-t", "role", "spot.auth." + role)
    assert re.search(r"ENTRY POINT: \W*main\b", text), text  # the name is bold, or *main* without color
    assert "EXAMPLES:" in text, "add examples to the main entry point of roles/%s/meta/argument_specs.yml" % role
    data = json.loads(ansible_doc(tmp_path, "--json", "-t", "role", "spot.auth." + role))["spot.auth." + role]
    for entry_point, spec in data["entry_points"].items():
        assert spec.get("short_description"), "%s: entry point %s has no short_description" % (role, entry_point)


MARKUP_KEYS = ("description", "short_description", "notes", "requirements")
BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"))


def marked_up_strings(node, inside=False):
    """Every documentation string of ansible-doc's JSON (descriptions, notes), at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from marked_up_strings(value, inside=key in MARKUP_KEYS)
    elif isinstance(node, list):
        for item in node:
            yield from marked_up_strings(item, inside)
    elif inside and isinstance(node, str):
        yield node


def unbalanced_code(text):
    """C(), V() and O() contents that end early: markup ends at the first ')', so C(f(x)) renders as 'f(x'."""
    from antsibull_docs_parser import parser

    found = []
    for paragraph in parser.parse(text, parser.Context(), strict=True):
        for part in paragraph:
            code = getattr(part, "text", None) if type(part).__name__ == "CodePart" else getattr(part, "value", None)
            if code and any(code.count(opening) != code.count(closing) for opening, closing in BRACKETS):
                found.append(code)
    return found


@pytest.mark.parametrize("doc_type, name", plugins() + [("role", role) for role in EXPECTED_ROLES])
def test_markup_renders_whole(tmp_path, doc_type, name):
    data = json.loads(ansible_doc(tmp_path, "--json", "-t", doc_type, "spot.auth." + name))["spot.auth." + name]
    broken = [code for text in marked_up_strings(data) for code in unbalanced_code(text)]
    assert not broken, "markup that closes at an inner parenthesis (rephrase without it): %s" % broken


def test_markup_check_finds_an_inner_parenthesis():
    assert unbalanced_code("use C(f(x)) here") == ["f(x"]
    assert unbalanced_code("use C(f) and V([1, 2]) here") == []
