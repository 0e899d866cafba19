# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ES256 JWTs: compact form, raw r||s signatures, tamper detection."""

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spot_auth_sim import tokens

pytestmark = pytest.mark.timeout(60)

KEY = tokens.generate_signing_key()


def _segments(token):
    return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")]


def test_compact_form_and_raw_signature():
    token = tokens.sign(KEY, {"sub": "admin", "exp": 10}, key_id="spot-sim-0001")
    header, payload, signature = _segments(token)
    assert json.loads(header) == {"alg": "ES256", "typ": "JWT", "kid": "spot-sim-0001"}
    assert json.loads(payload) == {"sub": "admin", "exp": 10}
    assert len(signature) == 64  # r || s, not DER
    assert "=" not in token
    assert tokens.verify(KEY.public_key(), token) == {"sub": "admin", "exp": 10}


def test_other_key_and_tampering_fail():
    token = tokens.sign(KEY, {"sub": "admin"})
    with pytest.raises(tokens.TokenError):
        tokens.verify(tokens.generate_signing_key().public_key(), token)
    header, payload, signature = token.split(".")
    forged = header + "." + tokens.b64url_encode(b'{"sub":"root"}') + "." + signature
    with pytest.raises(tokens.TokenError):
        tokens.verify(KEY.public_key(), forged)


@pytest.mark.parametrize("junk", ["", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.AAAA", "x" * 50, "é.é.é",
                                  tokens.b64url_encode(b"[]") + ".e30.AAAA"])
def test_malformed_tokens_raise_token_error(junk):
    with pytest.raises(tokens.TokenError):
        tokens.verify(KEY.public_key(), junk)


def test_pyjwt_agrees():
    jwt = pytest.importorskip("jwt")
    token = tokens.sign(KEY, {"sub": "admin", "per": ["*"]})
    assert jwt.decode(token, KEY.public_key(), algorithms=["ES256"]) == {"sub": "admin", "per": ["*"]}
    theirs = jwt.encode({"sub": "x"}, KEY, algorithm="ES256")
    assert tokens.verify(KEY.public_key(), theirs) == {"sub": "x"}


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=200))
def test_verify_never_raises_anything_but_token_error(text):
    with pytest.raises(tokens.TokenError):
        tokens.verify(KEY.public_key(), text)
