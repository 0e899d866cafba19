# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""From validated settings to a token and the ``spot_auth`` facts, shared by every front end.

With a token cache the order is: a cached token with more than ``token_cache_margin`` seconds left
(no request at all); else re-mint the cached token; if the robot refuses it (InvalidTokenError) and a
password is at hand, log in with the password. Without a cache: re-mint ``token`` or log in. A cache
entry whose token names another robot or user is never used, not even for re-minting.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time
from concurrent.futures import Future

from ansible_collections.spot.auth.plugins.module_utils._client import settle
from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidTokenError, SpotAuthError, unexpected_error
from ansible_collections.spot.auth.plugins.module_utils._refusals import RefusalFileError
from ansible_collections.spot.auth.plugins.module_utils._token_cache import TokenCacheError
from ansible_collections.spot.auth.plugins.module_utils._tokens import TokenTimes, filing_mismatch

FACT_NAME = "spot_auth"


class Outcome:
    """A token and how it was obtained: ``cache``, ``session`` (earlier in the run), ``token`` (re-minted) or ``password``.

    ``warnings`` holds what a user should hear about (a refused cache entry); never a secret.
    """

    __slots__ = ("token", "method", "warnings")

    def __init__(self, token, method, warnings=()):
        self.token = token
        self.method = method
        self.warnings = list(warnings)

    @property
    def minted(self):
        return self.method not in ("cache", "session")


def obtain_async(settings, client):
    """Start getting a token for ``settings`` through ``client``; returns a Future of an ``Outcome``.

    The Future always resolves, with an ``Outcome`` or a ``SpotAuthError``, whatever happens after the
    RPC (a callback that raised would otherwise leave it pending forever). Raises ``InvalidOptionError``
    at once (before any network call) for an unusable cache directory.
    """
    cache = settings.cache()
    warnings = []
    cached = _usable_cache_entry(settings, cache, warnings) if settings.reads_cache else None
    memory = settings.refusal_memory()
    outcome = Future()

    def fail(exc):
        settle(outcome, error=unexpected_error(exc, settings.hostname, settings.port, settings.secrets()))

    def remembering(action, *args):
        """Run a refusal memory action; a record file that fails its checks costs a warning, not the handshake."""
        try:
            action(*args)
        except RefusalFileError as error:
            warnings.append(str(error))

    def then(start_call, method, fall_back=None, credential=None):
        """Start a call; ``credential`` (the secrets it sends) is checked against and recorded in the memory."""
        def callback(finished):
            try:
                error = finished.exception()
                if credential is not None and memory is not None:
                    if error is None:
                        remembering(memory.forget, credential)
                    else:
                        remembering(memory.record, credential, error)
                if error is None:
                    token = finished.result()
                    warnings.extend(store_in_cache(settings, token, cache))
                    settle(outcome, Outcome(token, method, warnings))
                elif fall_back is None or not fall_back(error):
                    settle(outcome, error=_with_warnings(error, warnings))
            except Exception as exc:
                fail(exc)
        try:
            if credential is not None and memory is not None:
                remembering(memory.check, credential)  # raises the refusal a run before this one got
            start_call().add_done_callback(callback)
        except SpotAuthError as refused:
            settle(outcome, error=_with_warnings(refused, warnings))
        except Exception as exc:
            fail(exc)

    def log_in():
        then(lambda: client.auth_async(settings.username, settings.password, app_token=settings.app_token), "password",
             credential=(settings.password, settings.app_token))

    if cached is not None:
        token, stored_at = cached
        if TokenTimes(token).usable_until(stored_at) - time.time() > settings.token_cache_margin:
            outcome.set_result(Outcome(token, "cache", warnings))
            return outcome

        def fall_back_to_password(error):
            if isinstance(error, InvalidTokenError) and settings.password:
                log_in()
                return True
            return False

        then(lambda: client.auth_with_token_async(token, app_token=settings.app_token), "token", fall_back_to_password)
    elif settings.token:
        then(lambda: client.auth_with_token_async(settings.token, app_token=settings.app_token), "token",
             credential=(settings.token, settings.app_token))
    else:
        log_in()
    return outcome


def _with_warnings(error, warnings):
    """``error``, telling also what a user should hear about (an unusable cache entry or refusal record)."""
    if warnings:
        error.message = "%s (also: %s)" % (error.message, "; ".join(warnings))
        error.args = (error.message,)
    return error


def _usable_cache_entry(settings, cache, warnings):
    """(token, stored_at) of the cache entry of ``settings`` when it may be used for them, else None."""
    try:
        entry = cache.read_entry(settings.cache_entry)
    except TokenCacheError as error:
        warnings.append(str(error))
        return None
    if entry is None:
        return None
    mismatch = filing_mismatch(entry[0], settings.serial, settings.username)
    if mismatch:
        # Sending another robot's or user's token would hand it to this robot: log in afresh instead.
        warnings.append("token cache entry %s was not used: %s; a fresh token replaces it"
                        % (cache.path(settings.cache_entry), mismatch))
        return None
    return entry


def store_in_cache(settings, token, cache=None):
    """Write ``token`` to the ``token_cache`` entry of ``settings`` (if any); returns warnings, never raises."""
    if not settings.writes_cache:
        return []
    cache = cache or settings.cache()
    try:
        if cache.read(settings.cache_entry) == token:
            return []  # already there (a token reused within the run): no write, no fsync
    except TokenCacheError:
        pass  # an entry the cache refuses is replaced
    try:
        cache.write(settings.cache_entry, token)
    except Exception as error:  # the token is good; a cache that cannot take it only costs a login next time
        return ["could not write the token cache entry %s (%s)" % (cache.path(settings.cache_entry), error)]
    return []


def obtain(settings):
    """Get a token for ``settings`` (blocking); returns an ``Outcome`` or raises ``SpotAuthError``."""
    with settings.client() as client:
        return obtain_async(settings, client).result()


def token_facts(settings, outcome):
    facts = {
        "token": outcome.token,
        "hostname": settings.hostname,
        "port": settings.port,
        "username": settings.username,
        "method": outcome.method,
    }
    facts.update(TokenTimes(outcome.token).as_facts())
    return facts


def validate_certs_warning(settings):
    return ("spot.auth.token: validate_certs is false for %s: the robot's identity is not checked, so anyone on the "
            "network path can impersonate it and receive the credentials" % settings.hostname)
