# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Message classes of the Spot auth handshake, built from the embedded descriptor set.

The classes live in a private descriptor pool, so the simulator works with any protobuf
from 4.25 on and can share a process with bosdyn-api (whose classes use the same names in
the default pool) without a clash.
"""

from __future__ import annotations

import base64
import time

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from ._wire_descriptor import FILE_DESCRIPTOR_SET_B64

SERVICE_NAME = "bosdyn.api.AuthService"
METHOD_NAME = "GetAuthToken"
GET_AUTH_TOKEN_PATH = "/%s/%s" % (SERVICE_NAME, METHOD_NAME)


def _build_pool():
    files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode("".join(FILE_DESCRIPTOR_SET_B64)))
    pool = descriptor_pool.DescriptorPool()
    for file_proto in files.file:  # dependencies come before the files that import them
        pool.Add(file_proto)
    return pool


POOL = _build_pool()


def _message_class(full_name):
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


GetAuthTokenRequest = _message_class("bosdyn.api.GetAuthTokenRequest")
GetAuthTokenResponse = _message_class("bosdyn.api.GetAuthTokenResponse")
RequestHeader = _message_class("bosdyn.api.RequestHeader")
ResponseHeader = _message_class("bosdyn.api.ResponseHeader")
CommonError = _message_class("bosdyn.api.CommonError")

_STATUS_ENUM = POOL.FindEnumTypeByName("bosdyn.api.GetAuthTokenResponse.Status")
_CODE_ENUM = POOL.FindEnumTypeByName("bosdyn.api.CommonError.Code")

STATUS_UNKNOWN = _STATUS_ENUM.values_by_name["STATUS_UNKNOWN"].number
STATUS_OK = _STATUS_ENUM.values_by_name["STATUS_OK"].number
STATUS_INVALID_LOGIN = _STATUS_ENUM.values_by_name["STATUS_INVALID_LOGIN"].number
STATUS_INVALID_TOKEN = _STATUS_ENUM.values_by_name["STATUS_INVALID_TOKEN"].number
STATUS_TEMPORARILY_LOCKED_OUT = _STATUS_ENUM.values_by_name["STATUS_TEMPORARILY_LOCKED_OUT"].number
STATUS_INVALID_APPLICATION_TOKEN = _STATUS_ENUM.values_by_name["STATUS_INVALID_APPLICATION_TOKEN"].number
STATUS_EXPIRED_APPLICATION_TOKEN = _STATUS_ENUM.values_by_name["STATUS_EXPIRED_APPLICATION_TOKEN"].number

CODE_UNSPECIFIED = _CODE_ENUM.values_by_name["CODE_UNSPECIFIED"].number
CODE_OK = _CODE_ENUM.values_by_name["CODE_OK"].number
CODE_INTERNAL_SERVER_ERROR = _CODE_ENUM.values_by_name["CODE_INTERNAL_SERVER_ERROR"].number
CODE_INVALID_REQUEST = _CODE_ENUM.values_by_name["CODE_INVALID_REQUEST"].number


def status_name(number):
    """``STATUS_...`` name of a GetAuthTokenResponse status number (``STATUS_<n>`` if unknown)."""
    value = _STATUS_ENUM.values_by_number.get(number)
    return value.name if value is not None else "STATUS_%d" % number


def code_name(number):
    """``CODE_...`` name of a CommonError code number (``CODE_<n>`` if unknown)."""
    value = _CODE_ENUM.values_by_number.get(number)
    return value.name if value is not None else "CODE_%d" % number


def set_timestamp(timestamp, seconds):
    """Fill a google.protobuf.Timestamp from float seconds since the epoch."""
    whole = int(seconds // 1)
    timestamp.seconds = whole
    timestamp.nanos = min(int(round((seconds - whole) * 1e9)), 999999999)


def timestamp_seconds(timestamp):
    return timestamp.seconds + timestamp.nanos / 1e9


def build_request(username=None, password=None, token=None, application_token=None,
                  client_name="spot-auth-sim-client", now=None, disable_rpc_logging=True):
    """A GetAuthTokenRequest as a careful client would build it (header filled in)."""
    request = GetAuthTokenRequest()
    set_timestamp(request.header.request_timestamp, time.time() if now is None else now)
    request.header.client_name = client_name
    request.header.disable_rpc_logging = bool(disable_rpc_logging)
    if username:
        request.username = username
    if password:
        request.password = password
    if token:
        request.token = token
    if application_token:
        request.application_token = application_token
    return request
