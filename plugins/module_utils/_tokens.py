# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a client can learn from a Spot user token without verifying it.

A user token is a JWT signed by the robot; only the robot can verify it, so the claims read here
are informational (expiry for facts and caching), never a security decision. Claims other than
``exp`` are undocumented: read them defensively and tolerate tokens that are not JWTs at all.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import datetime
import json

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MAX_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z, the largest an ISO 8601 datetime holds


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

    def as_facts(self):
        return {"issued_at": iso8601(self.issued_at), "expires_at": iso8601(self.expires_at)}
