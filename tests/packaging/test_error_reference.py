# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docs/error-reference.md is generated from the error table and must match it."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import shutil
import sys

from packaging_helpers import REPO_ROOT, run

from ansible_collections.spot.auth.plugins.module_utils import _errors

GENERATOR = os.path.join(REPO_ROOT, "scripts", "generate_error_reference.py")
REFERENCE = os.path.join(REPO_ROOT, "docs", "error-reference.md")


def test_reference_is_current():
    completed = run([sys.executable, GENERATOR, "--check"])
    assert completed.returncode == 0, completed.stderr + "\nrun: python scripts/generate_error_reference.py"


def test_every_error_type_has_a_section():
    with open(REFERENCE) as handle:
        text = handle.read()
    for name in _errors.error_types() + ["InvalidOptionError"]:
        assert "\n### %s\n" % name in text, name
    for (kind, *_rest), spec in _errors.ERROR_TABLE.items():
        assert spec.message in text, (kind, spec.message)


def test_check_fails_on_a_stale_copy(tmp_path):
    stale = tmp_path / "error-reference.md"
    shutil.copy(REFERENCE, str(stale))
    with open(str(stale), "a") as handle:
        handle.write("\nedited by hand\n")
    completed = run([sys.executable, GENERATOR, "--check", "--output", str(stale)])
    assert completed.returncode == 1
    assert "stale" in completed.stderr
    completed = run([sys.executable, GENERATOR, "--output", str(stale)])
    assert completed.returncode == 0, completed.stderr
    assert stale.read_text() == open(REFERENCE).read()
