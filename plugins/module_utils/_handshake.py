# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""From validated settings to a token and the ``spot_auth`` facts, shared by every front end.

With a token cache the order is: a cached token with more than ``token_cache_margin`` seconds left
(no request at all); else re-mint the cached token; if the robot refuses it (InvalidTokenError) and a
password is at hand, log in with the password. Without a cache: re-mint ``token`` or log in.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time
from concurrent.futures import Future

from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidTokenError
from ansible_collections.spot.auth.plugins.module_utils._token_cache import TokenCacheError
from ansible_collections.spot.auth.plugins.module_utils._tokens import TokenTimes

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

    Raises ``InvalidOptionError`` at once (before any network call) for an unusable cache directory.
    """
    cache = settings.cache()
    warnings = []
    cached = None
    if cache is not None:
        try:
            cached = cache.read(settings.cache_entry)
        except TokenCacheError as error:
            warnings.append(str(error))
    outcome = Future()

    def done(token, method):
        warnings.extend(store_in_cache(settings, token, cache))
        outcome.set_result(Outcome(token, method, warnings))

    def then(future, method, on_error=None):
        def callback(finished):
            error = finished.exception()
            if error is None:
                done(finished.result(), method)
            elif on_error is not None and on_error(error):
                return
            else:
                outcome.set_exception(error)
        future.add_done_callback(callback)

    def log_in():
        then(client.auth_async(settings.username, settings.password, app_token=settings.app_token), "password")

    if cached is not None:
        left = TokenTimes(cached).seconds_left(time.time())
        if left > settings.token_cache_margin:
            outcome.set_result(Outcome(cached, "cache", warnings))
            return outcome

        def fall_back_to_password(error):
            if isinstance(error, InvalidTokenError) and settings.password:
                log_in()
                return True
            return False

        then(client.auth_with_token_async(cached, app_token=settings.app_token), "token", fall_back_to_password)
    elif settings.token:
        then(client.auth_with_token_async(settings.token, app_token=settings.app_token), "token")
    else:
        log_in()
    return outcome


def store_in_cache(settings, token, cache=None):
    """Write ``token`` to the ``token_cache`` entry of ``settings`` (if any); returns warnings, never raises."""
    cache = cache or settings.cache()
    if cache is None:
        return []
    try:
        if cache.read(settings.cache_entry) == token:
            return []  # already there (a token reused within the run): no write, no fsync
    except TokenCacheError:
        pass  # an entry the cache refuses is replaced
    try:
        cache.write(settings.cache_entry, token)
    except (OSError, TokenCacheError) as error:
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
