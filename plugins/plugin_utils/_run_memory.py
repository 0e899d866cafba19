# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What one run has learnt from its robots: tokens it got and credentials they refused.

Kept by the run's session agent (or by one process when the agent is off). Keys are HMACs under a
key made fresh for each memory, so the secrets themselves are never stored or compared in clear.
A token is served again for the same robot, user and credential while it is fresh; a refused
credential is answered from memory, with the robot's own error type, and never sent again.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import hmac
import os
import time

from ansible_collections.spot.auth.plugins.module_utils._errors import TemporarilyLockedOutError, error_from_result
# The same answers count as refusals within a run as across runs; a lockout ends by itself after 60 s.
from ansible_collections.spot.auth.plugins.module_utils._refusals import LOCKOUT_SECONDS, REFUSALS
from ansible_collections.spot.auth.plugins.module_utils._tokens import TokenTimes


def credential_of(settings):
    """The secret a handshake with ``settings`` presents first."""
    return settings.token if settings.method == "token" else settings.password


class RunMemory:
    """Tokens obtained and credentials refused in one run, keyed by robot, user and credential."""

    def __init__(self, clock=time.time):
        self._secret = os.urandom(32)
        self._clock = clock
        self._tokens = {}
        self._refusals = {}

    def key(self, settings):
        """An opaque key for the robot, the trust placed in it, the user, method and credentials of ``settings``.

        Trust is part of it: a token or refusal got without verifying the robot's certificate must not
        answer a request that verifies it.
        """
        fields = (settings.hostname, str(settings.port), settings.authority, str(bool(settings.validate_certs)),
                  settings.ca_cert or "", settings.username or "", settings.method, credential_of(settings) or "",
                  settings.app_token or "")
        message = "\0".join(fields).encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def recall(self, settings, key=None):
        """A fresh token for ``settings``, None, or raises the refusal remembered for them."""
        key = key or self.key(settings)
        now = self._clock()
        refusal = self._refusals.get(key)
        if refusal is not None:
            fields, refused_at, until = refusal
            if until is None or now < until:
                message = "%s (refused at %s; not sent again in this run)" % (
                    fields["msg"], time.strftime("%H:%M:%S", time.localtime(refused_at)))
                raise error_from_result(dict(fields, msg=message, retryable=False))
            del self._refusals[key]
        kept = self._tokens.get(key)
        if kept is not None:
            token, obtained_at = kept
            if TokenTimes(token).usable_until(obtained_at) - now > settings.token_cache_margin:
                return token
            del self._tokens[key]
        return None

    def remember(self, settings, token=None, error=None, key=None):
        """Keep a token obtained for ``settings``, or the refusal ``error`` they got."""
        key = key or self.key(settings)
        if token is not None:
            self._tokens[key] = (token, self._clock())
            self._refusals.pop(key, None)
        elif isinstance(error, REFUSALS):
            now = self._clock()
            until = now + LOCKOUT_SECONDS if isinstance(error, TemporarilyLockedOutError) else None
            self._refusals[key] = (error.to_result(), now, until)
