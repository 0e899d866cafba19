# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Facts the collection ships that must not drift."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import ssl

import yaml

from ansible_collections.spot.auth.plugins.module_utils._errors import ERROR_TABLE, error_types
from ansible_collections.spot.auth.plugins.module_utils._root_ca import (
    BOSTON_DYNAMICS_ROOT_CA_PEM,
    BOSTON_DYNAMICS_ROOT_CA_SHA256,
)
from ansible_collections.spot.auth.plugins.module_utils._version import COLLECTION_VERSION
from ansible_collections.spot.auth.tests.unit.conftest import COLLECTION_ROOT


def test_shipped_root_ca_is_the_boston_dynamics_one():
    der = ssl.PEM_cert_to_DER_cert(BOSTON_DYNAMICS_ROOT_CA_PEM)
    fingerprint = hashlib.sha256(der).hexdigest().upper()
    assert ":".join(fingerprint[i:i + 2] for i in range(0, 64, 2)) == BOSTON_DYNAMICS_ROOT_CA_SHA256
    assert BOSTON_DYNAMICS_ROOT_CA_SHA256.startswith("85:10:35:FD:8C:16:93:FC")


def test_version_matches_galaxy_yml():
    with open(os.path.join(COLLECTION_ROOT, "galaxy.yml")) as handle:
        assert yaml.safe_load(handle)["version"] == COLLECTION_VERSION


def test_every_table_row_is_one_line_and_names_a_known_type():
    for spec in ERROR_TABLE.values():
        assert "\n" not in spec.message and spec.message[0].islower()
    assert "InvalidLoginError" in error_types() and "CertificateVerificationError" in error_types()
