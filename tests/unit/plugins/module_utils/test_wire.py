# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The wire format: same bytes as the SDK's, no clash with it, any protobuf from 4.25 on."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import subprocess
import sys
import textwrap
from concurrent import futures

import grpc
import pytest

from ansible_collections.spot.auth.plugins.module_utils import _errors, _wire
from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient
from ansible_collections.spot.auth.tests.unit.conftest import COLLECTION_ROOT, MINTED, PASSWORD, TOKEN

bosdyn_auth_pb2 = pytest.importorskip("bosdyn.api.auth_pb2")
from bosdyn.api import auth_service_pb2_grpc  # noqa: E402  pylint: disable=wrong-import-position


def test_messages_match_the_sdk_byte_for_byte_in_one_process():
    ours = _wire.build_request("wire-test", username="admin", password=PASSWORD)
    theirs = bosdyn_auth_pb2.GetAuthTokenRequest.FromString(ours.SerializeToString())
    assert (theirs.username, theirs.password, theirs.header.client_name) == ("admin", PASSWORD, "wire-test")
    assert theirs.header.disable_rpc_logging is True
    assert theirs.header.request_timestamp.seconds == ours.header.request_timestamp.seconds
    sdk_response = bosdyn_auth_pb2.GetAuthTokenResponse(status=bosdyn_auth_pb2.GetAuthTokenResponse.STATUS_OK, token=MINTED)
    sdk_response.header.error.code = sdk_response.header.error.CODE_OK
    parsed = _wire.parse_response(sdk_response.SerializeToString())
    assert _wire.enum_name(parsed, "status") == "STATUS_OK" and parsed.token == MINTED
    assert _wire.enum_name(parsed.header.error, "code") == "CODE_OK"


def test_field_and_enum_numbers_agree_with_the_sdk():
    for name in ("GetAuthTokenRequest", "GetAuthTokenResponse"):
        sdk = getattr(bosdyn_auth_pb2, name).DESCRIPTOR
        ours = getattr(_wire.messages, name).DESCRIPTOR
        for field in sdk.fields:
            assert ours.fields_by_name[field.name].number == field.number, (name, field.name)
    sdk_status = bosdyn_auth_pb2.GetAuthTokenResponse.DESCRIPTOR.enum_types_by_name["Status"]
    ours_status = _wire.messages.GetAuthTokenResponse.DESCRIPTOR.enum_types_by_name["Status"]
    for value in sdk_status.values:
        assert ours_status.values_by_name[value.name].number == value.number
    # The pre-4.0 additions the SDK 5.x no longer carries.
    assert _wire.messages.GetAuthTokenRequest.DESCRIPTOR.fields_by_name["application_token"].number == 5
    assert ours_status.values_by_name["STATUS_EXPIRED_APPLICATION_TOKEN"].number == 6


class SdkServicer(auth_service_pb2_grpc.AuthServiceServicer):
    """A robot built from bosdyn-api's own servicer class and messages."""

    def __init__(self):
        self.requests = []

    def GetAuthToken(self, request, context):
        self.requests.append(request)
        response = bosdyn_auth_pb2.GetAuthTokenResponse()
        response.header.error.code = response.header.error.CODE_OK
        response.header.request_header.CopyFrom(request.header)
        if request.password == PASSWORD or request.token == TOKEN:
            response.status = response.STATUS_OK
            response.token = MINTED
        else:
            response.status = response.STATUS_INVALID_LOGIN
        return response


@pytest.fixture
def sdk_robot(pki):
    servicer = SdkServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(pki.good.key_pem, pki.good.cert_pem)]))
    server.start()
    yield port, servicer
    server.stop(grace=None).wait(5)


def test_client_talks_to_a_server_built_from_the_sdk_stubs(sdk_robot, pki):
    port, servicer = sdk_robot
    with AuthClient("127.0.0.1", port, root_certificates=pki.roots, retries=0, timeout=5) as client:
        assert client.auth("admin", PASSWORD) == MINTED
        assert client.auth_with_token(TOKEN) == MINTED
        with pytest.raises(_errors.InvalidLoginError):
            client.auth("admin", "wrong")
    assert [request.username for request in servicer.requests] == ["admin", "", "admin"]
    assert all(request.header.disable_rpc_logging for request in servicer.requests)


def test_generated_descriptor_is_current():
    pytest.importorskip("grpc_tools")
    result = subprocess.run([sys.executable, os.path.join(COLLECTION_ROOT, "scripts", "generate_wire.py"), "--check"],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


ROUND_TRIP = textwrap.dedent("""
    import google.protobuf, sys
    import bosdyn.api.auth_pb2 as sdk  # classes in the default pool under the same names
    from ansible_collections.spot.auth.plugins.module_utils import _wire
    request = _wire.build_request("c", username="u", password="p", app_token="a")
    back = _wire.messages.GetAuthTokenRequest.FromString(request.SerializeToString())
    assert back.application_token == "a" and back.header.disable_rpc_logging
    assert sdk.GetAuthTokenRequest.FromString(request.SerializeToString()).password == "p"
    print(google.protobuf.__version__)
""")


@pytest.mark.parametrize("requirement", ["protobuf==4.25.*", "protobuf==5.29.*", "protobuf==6.33.*"])
def test_works_with_older_protobuf_runtimes(tmp_path, requirement):
    target = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "--no-deps", "--target", str(target), requirement, "bosdyn-api==5.2.0"],
                             check=False, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    collections_root = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), collections_root]))
    run = subprocess.run([sys.executable, "-c", ROUND_TRIP], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().startswith(requirement.split("==")[1].rstrip(".*"))
