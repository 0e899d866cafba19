# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ES256 JSON Web Tokens: ``base64url(header).base64url(payload).base64url(r || s)``.

The signature is the raw 64-byte concatenation of r and s (RFC 7518, section 3.4), not the
DER structure that ``cryptography`` produces and expects.
"""

from __future__ import annotations

import base64
import binascii
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

ALGORITHM = "ES256"
_COORDINATE_BYTES = 32


class TokenError(ValueError):
    """A token is malformed or its signature does not verify."""


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if isinstance(text, str):
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError:
            raise TokenError("token is not ASCII") from None
    if b"=" in text:
        raise TokenError("padding in base64url segment")
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("bad base64url segment") from None


def _json_segment(obj):
    return b64url_encode(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def generate_signing_key():
    """A new P-256 private key for ES256."""
    return ec.generate_private_key(ec.SECP256R1())


def sign(private_key, claims, key_id=None):
    """Encode and sign ``claims`` (a JSON-serialisable dict); returns the compact JWT string."""
    header = {"alg": ALGORITHM, "typ": "JWT"}
    if key_id is not None:
        header["kid"] = key_id
    signing_input = _json_segment(header) + "." + _json_segment(claims)
    der = private_key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    return signing_input + "." + b64url_encode(raw)


def decode_unverified(token):
    """``(header, claims)`` of a token without checking its signature. Raises TokenError."""
    if not isinstance(token, str):
        raise TokenError("token is not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("a JWT has three dot-separated segments")
    try:
        header = json.loads(b64url_decode(parts[0]).decode("utf-8"))
        claims = json.loads(b64url_decode(parts[1]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, TokenError):
            raise
        raise TokenError("segment is not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("header and payload must be JSON objects")
    return header, claims


def verify(public_key, token):
    """Claims of ``token`` after checking it is an ES256 JWT signed by ``public_key``.

    Raises TokenError when it is malformed or the signature does not match. Expiry and the
    other claims are the caller's business.
    """
    header, claims = decode_unverified(token)
    if header.get("alg") != ALGORITHM:
        raise TokenError("unexpected algorithm")
    signing_input, _dot, signature = token.rpartition(".")
    raw = b64url_decode(signature)
    if len(raw) != 2 * _COORDINATE_BYTES:
        raise TokenError("an ES256 signature is 64 bytes")
    r = int.from_bytes(raw[:_COORDINATE_BYTES], "big")
    s = int.from_bytes(raw[_COORDINATE_BYTES:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise TokenError("signature does not verify") from None
    return claims
