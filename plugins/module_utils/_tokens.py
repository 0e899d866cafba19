# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a client can learn from a Spot user token without verifying it.

A user token is a JWT signed by the robot; only the robot can verify it, so the claims read here
are informational (expiry for facts and caching, and a check that a cached token was filed under
the right robot and user). Claims other than ``exp`` are undocumented: read them defensively and
tolerate tokens that are not JWTs at all.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import datetime
import json
import re

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the largest an ISO 8601 datetime holds
# A robot's user tokens are valid 12 hours (protocol, section 4): no token is trusted for longer.
TOKEN_LIFETIME_SECONDS = 12 * 3600
# Longest token accepted from a robot; a token must also fit the token option to be re-minted.
MAX_TOKEN_CHARS = 16384
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")


def usable_token(token):
    """Whether ``token`` can be returned, cached and sent back: printable ASCII without spaces, sane length."""
    return isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_CHARS and bool(_PRINTABLE_ASCII.fullmatch(token))


def token_claims(token):
    """The JWT payload as a dict, or {} when the token is not a readable JWT."""
    if not isinstance(token, str):
        return {}
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw.decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _timestamp(claims, name):
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not 0 <= value <= _MAX_TIMESTAMP:
        return None
    return value


def iso8601(timestamp):
    """``2026-11-28T15:04:05Z`` for a POSIX timestamp, None for None."""
    if timestamp is None:
        return None
    moment = _EPOCH + datetime.timedelta(seconds=int(timestamp))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenTimes:
    """Issue and expiry times of a token (POSIX seconds, None when unknown)."""

    __slots__ = ("issued_at", "expires_at")

    def __init__(self, token):
        claims = token_claims(token)
        self.issued_at = _timestamp(claims, "iat")
        self.expires_at = _timestamp(claims, "exp")

    def seconds_left(self, now):
        """Seconds until expiry, or None when the expiry is unknown."""
        return None if self.expires_at is None else self.expires_at - now

    def usable_until(self, obtained_at):
        """When a token obtained (or stored) at ``obtained_at`` stops being worth using.

        The token's own expiry, but never later than the robot's documented token lifetime after it was
        issued or obtained: a token claiming to live for years is not kept for years.
        """
        bounds = [obtained_at + TOKEN_LIFETIME_SECONDS]
        if self.issued_at is not None:
            bounds.append(self.issued_at + TOKEN_LIFETIME_SECONDS)
        if self.expires_at is not None:
            bounds.append(self.expires_at)
        return min(bounds)

    def as_facts(self):
        return {"issued_at": iso8601(self.issued_at), "expires_at": iso8601(self.expires_at)}


def filing_mismatch(token, serial=None, username=None):
    """Why ``token`` does not belong under ``serial`` and ``username``, or None.

    Spot tokens name the robot's serial as issuer (``iss``) and the user as subject (``sub``). A claim
    that is absent, or a name that is unknown, is not held against the token.
    """
    claims = token_claims(token)
    issuer, subject = claims.get("iss"), claims.get("sub")
    if serial and isinstance(issuer, str) and issuer != serial:
        return "it was issued by another robot"
    if username and isinstance(subject, str) and subject != username:
        return "it belongs to another user"
    return None
