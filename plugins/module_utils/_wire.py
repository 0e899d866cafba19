# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Spot auth wire format: message classes, the RPC path and request building.

Message classes come from a FileDescriptorSet embedded in ``_wire_descriptor`` (generated from
``protos/`` by ``scripts/generate_wire.py``) and loaded into a private descriptor pool. That keeps
the collection independent of the protobuf runtime version that compiled stubs would demand, and
lets it share a process with bosdyn-api, whose classes live in the default pool under the same names.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import time
import traceback

from ansible_collections.spot.auth.plugins.module_utils._wire_descriptor import FILE_DESCRIPTOR_SET_B64

try:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError:
    PROTOBUF_IMPORT_ERROR = traceback.format_exc()
else:
    PROTOBUF_IMPORT_ERROR = None

SERVICE_NAME = "bosdyn.api.AuthService"
METHOD_NAME = "GetAuthToken"
GET_AUTH_TOKEN_PATH = "/%s/%s" % (SERVICE_NAME, METHOD_NAME)


class _Messages:
    """Message classes of the auth handshake, built once on first use."""

    _NAMES = {
        "GetAuthTokenRequest": "bosdyn.api.GetAuthTokenRequest",
        "GetAuthTokenResponse": "bosdyn.api.GetAuthTokenResponse",
        "RequestHeader": "bosdyn.api.RequestHeader",
        "ResponseHeader": "bosdyn.api.ResponseHeader",
        "CommonError": "bosdyn.api.CommonError",
    }

    def __init__(self):
        self._classes = None
        self.pool = None

    def _load(self):
        if PROTOBUF_IMPORT_ERROR is not None:
            raise ImportError("the protobuf Python package is required:\n" + PROTOBUF_IMPORT_ERROR)
        files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode("".join(FILE_DESCRIPTOR_SET_B64)))
        pool = descriptor_pool.DescriptorPool()
        for file_proto in files.file:  # protoc lists dependencies before their users
            pool.Add(file_proto)
        self.pool = pool
        self._classes = {
            attr: message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))
            for attr, full_name in self._NAMES.items()
        }

    def __getattr__(self, name):
        if name.startswith("_") or name not in self._NAMES:
            raise AttributeError(name)
        if self._classes is None:
            self._load()
        return self._classes[name]


messages = _Messages()


def enum_name(message, field_name):
    """Name of an enum field's value, or None for a number the schema does not know."""
    field = message.DESCRIPTOR.fields_by_name[field_name]
    value = field.enum_type.values_by_number.get(getattr(message, field_name))
    return value.name if value is not None else None


def build_request(client_name, username=None, password=None, token=None, app_token=None, now=None):
    """A GetAuthTokenRequest that asks the robot not to log it (it carries a secret)."""
    request = messages.GetAuthTokenRequest()
    header = request.header
    stamp = time.time() if now is None else now
    header.request_timestamp.seconds = int(stamp)
    header.request_timestamp.nanos = int((stamp % 1) * 1e9)
    header.client_name = client_name
    header.disable_rpc_logging = True
    if username:
        request.username = username
    if password:
        request.password = password
    if token:
        request.token = token
    if app_token:
        request.application_token = app_token
    return request


def serialize(message):
    return message.SerializeToString()


def parse_response(data):
    return messages.GetAuthTokenResponse.FromString(data)
