# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One handshake from validated settings to the ``spot_auth`` facts, shared by every front end."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.spot.auth.plugins.module_utils._tokens import TokenTimes

FACT_NAME = "spot_auth"


def start(settings, client):
    """Start the handshake ``settings`` ask for on ``client``; returns a Future of the token."""
    if settings.token:
        return client.auth_with_token_async(settings.token, app_token=settings.app_token)
    return client.auth_async(settings.username, settings.password, app_token=settings.app_token)


def authenticate(settings):
    """Run one handshake; returns the ``spot_auth`` facts, raises ``SpotAuthError`` on failure."""
    with settings.client() as client:
        token = start(settings, client).result()
    return token_facts(settings, token)


def token_facts(settings, token):
    facts = {
        "token": token,
        "hostname": settings.hostname,
        "port": settings.port,
        "username": settings.username,
        "method": settings.method,
    }
    facts.update(TokenTimes(token).as_facts())
    return facts


def validate_certs_warning(settings):
    return ("spot.auth.token: validate_certs is false for %s: the robot's identity is not checked, so anyone on the "
            "network path can impersonate it and receive the credentials" % settings.hostname)
