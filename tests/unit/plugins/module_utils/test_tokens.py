# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import json

import pytest

from ansible_collections.spot.auth.plugins.module_utils._tokens import TokenTimes, iso8601, token_claims


def jwt(payload):
    def part(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return "%s.%s.%s" % (part(b'{"alg":"ES256"}'), part(body), part(b"\x01" * 64))


def test_reads_issue_and_expiry_of_a_jwt():
    times = TokenTimes(jwt({"iat": 1795881600, "exp": 1795924800, "per": ["all"]}))
    assert times.as_facts() == {"issued_at": "2026-11-28T16:00:00Z", "expires_at": "2026-11-29T04:00:00Z"}
    assert times.seconds_left(1795924700) == 100


@pytest.mark.parametrize("token", [
    "", "not-a-jwt", "a.b", "a.!!!.c", jwt(b"\xff\xfe"), jwt(b"[1, 2]"), jwt({"exp": "soon"}),
    jwt({"exp": True}), jwt({"exp": -5}), jwt({"exp": 10 ** 20}), None, 42,
])
def test_tolerates_tokens_that_are_not_readable_jwts(token):
    times = TokenTimes(token)
    assert times.as_facts() == {"issued_at": None, "expires_at": None}
    assert times.seconds_left(0) is None


def test_claims_of_a_jwt_whose_payload_needs_padding():
    assert token_claims(jwt({"a": 1}))["a"] == 1
    assert iso8601(None) is None
