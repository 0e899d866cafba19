# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The auth core against robots on 127.0.0.1 over real gRPC+TLS."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import glob
import os
import re
import resource
import socket
import time

import grpc
import pytest

from ansible_collections.spot.auth.plugins.module_utils import _errors
from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient, read_ca_bundle, worst_case_seconds
from ansible_collections.spot.auth.tests.unit.conftest import MINTED, PASSWORD, TOKEN, abort, respond, sleeper


def client_for(robot, pki, **kwargs):
    kwargs.setdefault("root_certificates", pki.roots)
    kwargs.setdefault("timeout", 5)
    kwargs.setdefault("retries", 0)
    return AuthClient("127.0.0.1", robot.port, **kwargs)


def expect_failure(client, error_class, call="auth"):
    with pytest.raises(_errors.SpotAuthError) as info:
        if call == "auth":
            client.auth("admin", PASSWORD)
        else:
            client.auth_with_token(TOKEN)
    error = info.value
    assert error.error_type == error_class.__name__, error.message
    assert isinstance(error, error_class)
    for text in (str(error), repr(error), repr(error.to_result())):
        assert PASSWORD not in text and TOKEN not in text
    return error


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- success and what goes on the wire ------------------------------------------------------------

def test_password_login_returns_the_token_and_marks_the_request_unloggable(robot_factory, pki):
    robot = robot_factory(respond())
    with client_for(robot, pki, client_name="unit-test") as client:
        assert client.auth("admin", PASSWORD) == MINTED
    (request,) = robot.requests
    assert (request.username, request.password, request.token) == ("admin", PASSWORD, "")
    assert request.header.client_name == "unit-test"
    assert request.header.disable_rpc_logging is True
    assert abs(request.header.request_timestamp.seconds - time.time()) < 60


def test_remint_sends_the_token_and_no_password(robot_factory, pki):
    robot = robot_factory(respond())
    with client_for(robot, pki) as client:
        assert client.auth_with_token(TOKEN) == MINTED
    (request,) = robot.requests
    assert (request.token, request.password, request.username) == (TOKEN, "", "")
    assert request.header.disable_rpc_logging is True


def test_application_token_travels_in_field_5(robot_factory, pki):
    robot = robot_factory(respond())
    with client_for(robot, pki) as client:
        client.auth("admin", PASSWORD, app_token="app-token-1")
    assert robot.requests[0].application_token == "app-token-1"


def test_default_client_name_names_collection_version_and_controller(robot_factory, pki):
    robot = robot_factory(respond())
    with client_for(robot, pki) as client:
        client.auth("admin", PASSWORD)
    assert robot.requests[0].header.client_name == "spot.auth/0.1.0@%s" % socket.gethostname()


def test_async_forms_run_many_handshakes_from_one_thread(robot_factory, pki):
    robots = [robot_factory(sleeper(0.3, respond())) for dummy in range(8)]
    clients = [client_for(robot, pki) for robot in robots]
    started = time.monotonic()
    pending = [client.auth_async("admin", PASSWORD) for client in clients]
    pending += [client.auth_with_token_async(TOKEN) for client in clients]
    assert [future.result(timeout=10) for future in pending] == [MINTED] * 16
    # 16 calls of 0.3 s each: sequential would take 4.8 s.
    assert time.monotonic() - started < 2.4
    for client in clients:
        client.close()


# -- every response status and header error -------------------------------------------------------

RESPONSE_CASES = [
    ("STATUS_INVALID_LOGIN", "CODE_OK", _errors.InvalidLoginError),
    ("STATUS_INVALID_TOKEN", "CODE_OK", _errors.InvalidTokenError),
    ("STATUS_TEMPORARILY_LOCKED_OUT", "CODE_OK", _errors.TemporarilyLockedOutError),
    ("STATUS_INVALID_APPLICATION_TOKEN", "CODE_OK", _errors.InvalidApplicationTokenError),
    ("STATUS_EXPIRED_APPLICATION_TOKEN", "CODE_OK", _errors.ExpiredApplicationTokenError),
    ("STATUS_UNKNOWN", "CODE_OK", _errors.UnsetStatusError),
    (99, "CODE_OK", _errors.ResponseError),
    # A header that is not CODE_OK fails even when the status says OK.
    ("STATUS_OK", "CODE_INTERNAL_SERVER_ERROR", _errors.InternalServerError),
    ("STATUS_OK", "CODE_INVALID_REQUEST", _errors.InvalidRequestError),
    ("STATUS_OK", "CODE_UNSPECIFIED", _errors.UnsetStatusError),
    ("STATUS_OK", 42, _errors.ResponseError),
]


@pytest.mark.parametrize("status, header_code, error_class", RESPONSE_CASES)
def test_each_response_outcome_has_its_error_type(robot_factory, pki, status, header_code, error_class):
    robot = robot_factory(respond(status=status, header_code=header_code))
    with client_for(robot, pki, retries=5) as client:
        error = expect_failure(client, error_class)
    assert error.retryable is False
    assert len(robot.requests) == 1
    assert error.hostname == "127.0.0.1" and error.grpc_code is None
    assert error.status == (status if isinstance(status, str) else None)


def test_response_without_header_is_unset_status(robot_factory, pki):
    robot = robot_factory(respond(with_header=False))
    with client_for(robot, pki) as client:
        expect_failure(client, _errors.UnsetStatusError)


def test_ok_without_token_is_malformed(robot_factory, pki):
    robot = robot_factory(respond(token=""))
    with client_for(robot, pki) as client:
        expect_failure(client, _errors.MalformedResponseError)


def test_undecodable_answer_is_malformed(robot_factory, pki):
    robot = robot_factory(lambda request, context: b"\xff\xff\xff\xff not protobuf")
    with client_for(robot, pki) as client:
        expect_failure(client, _errors.MalformedResponseError)


def test_oversized_answer_is_refused(robot_factory, pki):
    robot = robot_factory(respond(token="x" * (200 * 1024)))
    with client_for(robot, pki) as client:
        error = expect_failure(client, _errors.ResponseTooLargeError)
    assert error.grpc_code == "RESOURCE_EXHAUSTED"


# -- transport failures ---------------------------------------------------------------------------

GRPC_CASES = [
    (grpc.StatusCode.UNAVAILABLE, "Received http2 header with status: 429", _errors.TooManyRequestsError, True),
    (grpc.StatusCode.UNAVAILABLE, "Received http2 header with status: 502", _errors.ServiceUnavailableError, True),
    (grpc.StatusCode.UNAVAILABLE, "backend went away", _errors.UnableToConnectToRobotError, True),
    (grpc.StatusCode.UNAUTHENTICATED, "no", _errors.UnauthenticatedError, False),
    (grpc.StatusCode.PERMISSION_DENIED, "no", _errors.PermissionDeniedError, False),
    (grpc.StatusCode.UNKNOWN, "something odd", _errors.RpcError, False),
]


@pytest.mark.parametrize("code, details, error_class, retryable", GRPC_CASES)
def test_each_grpc_failure_has_its_error_type(robot_factory, pki, code, details, error_class, retryable):
    robot = robot_factory(abort(code, details))
    with client_for(robot, pki) as client:
        error = expect_failure(client, error_class)
    assert error.retryable is retryable
    assert error.grpc_code == code.name and error.status is None


def test_port_number_429_is_not_mistaken_for_rate_limiting(robot_factory, pki):
    robot = robot_factory(abort(grpc.StatusCode.UNAVAILABLE, "ipv4:127.0.0.1:44290: connection reset"))
    with client_for(robot, pki) as client:
        expect_failure(client, _errors.UnableToConnectToRobotError)


def test_timeout_is_timed_out_error(robot_factory, pki):
    robot = robot_factory(sleeper(2, respond()))
    with client_for(robot, pki, timeout=0.3) as client:
        started = time.monotonic()
        error = expect_failure(client, _errors.TimedOutError)
    assert time.monotonic() - started < 1.5
    assert error.retryable is True and error.grpc_code == "DEADLINE_EXCEEDED"


def test_refused_connection_is_unable_to_connect(pki):
    with AuthClient("127.0.0.1", closed_port(), root_certificates=pki.roots, retries=0, timeout=5) as client:
        error = expect_failure(client, _errors.UnableToConnectToRobotError)
    assert "refused" in error.message


def test_untrusted_certificate_is_certificate_verification_error(robot_factory, pki):
    robot = robot_factory(respond(), certificate=pki.untrusted)
    with client_for(robot, pki, retries=3) as client:
        error = expect_failure(client, _errors.CertificateVerificationError)
    assert error.retryable is False and robot.requests == []


def test_certificate_not_naming_the_authority_is_nonexistent_authority(robot_factory, pki):
    robot = robot_factory(respond(), certificate=pki.wrong_name)
    with client_for(robot, pki) as client:
        expect_failure(client, _errors.NonexistentAuthorityError)


def test_authority_option_selects_the_name_checked(robot_factory, pki):
    robot = robot_factory(respond(), certificate=pki.wrong_name)
    with client_for(robot, pki, authority="not-the-authority.example") as client:
        assert client.auth("admin", PASSWORD) == MINTED


def test_default_trust_is_the_boston_dynamics_root(robot_factory):
    robot = robot_factory(respond())
    with AuthClient("127.0.0.1", robot.port, retries=0, timeout=5) as client:
        expect_failure(client, _errors.CertificateVerificationError)


def test_server_without_auth_service_is_unimplemented(robot_factory, pki):
    robot = robot_factory(register_service=False)
    with client_for(robot, pki) as client:
        expect_failure(client, _errors.UnimplementedError)


def test_unresolvable_hostname_is_unknown_dns_name(nxdomain_server, pki):
    # gRPC asks the resolver on 127.0.0.1 named in the target, which answers NXDOMAIN.
    host = "dns://127.0.0.1:%d/no-such-robot.spot.test" % nxdomain_server
    with AuthClient(host, 443, root_certificates=pki.roots, retries=2, timeout=5) as client:
        error = expect_failure(client, _errors.UnknownDnsNameError)
    assert error.retryable is False


# -- retries --------------------------------------------------------------------------------------

def test_transient_failures_are_retried_until_success(robot_factory, pki):
    unavailable = abort(grpc.StatusCode.UNAVAILABLE, "Received http2 header with status: 429")
    robot = robot_factory(unavailable, unavailable, respond())
    with client_for(robot, pki, retries=3) as client:
        assert client.auth("admin", PASSWORD) == MINTED
    assert len(robot.requests) == 3


def test_retries_are_bounded_in_count(robot_factory, pki):
    robot = robot_factory(abort(grpc.StatusCode.UNAVAILABLE, "down for maintenance"))
    with client_for(robot, pki, retries=2) as client:
        started = time.monotonic()
        expect_failure(client, _errors.UnableToConnectToRobotError)
    assert len(robot.requests) == 3
    assert time.monotonic() - started <= worst_case_seconds(5, 2)


def test_retries_are_bounded_in_time(robot_factory, pki):
    robot = robot_factory(respond(), sleeper(2, respond()))
    with client_for(robot, pki, retries=2, timeout=0.3) as client:
        assert client.auth("admin", PASSWORD) == MINTED  # the channel is up: each attempt's 0.3 s is the robot's
        started = time.monotonic()
        expect_failure(client, _errors.TimedOutError)
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed <= worst_case_seconds(0.3, 2) + 1.0
    assert len(robot.requests) == 1 + 3


def test_reconnects_after_the_robot_comes_back(pki, robot_factory):
    port = closed_port()
    client = AuthClient("127.0.0.1", port, root_certificates=pki.roots, retries=0, timeout=5)
    expect_failure(client, _errors.UnableToConnectToRobotError)
    robot_factory(respond(), port=port)
    client.retries = 3
    with client:
        assert client.auth("admin", PASSWORD) == MINTED


@pytest.mark.parametrize("status", ["STATUS_INVALID_LOGIN", "STATUS_TEMPORARILY_LOCKED_OUT", "STATUS_INVALID_TOKEN"])
def test_refused_credentials_are_sent_exactly_once(robot_factory, pki, status):
    robot = robot_factory(respond(status=status))
    with client_for(robot, pki, retries=10) as client:
        with pytest.raises(_errors.AuthResponseError):
            client.auth("admin", PASSWORD)
    assert len(robot.requests) == 1


# -- secrets --------------------------------------------------------------------------------------

def test_secrets_echoed_by_a_hostile_robot_are_masked(robot_factory, pki):
    def echo_secrets(request, context):
        context.abort(grpc.StatusCode.UNKNOWN, "you sent [%s%s]" % (request.password, request.token))

    robot = robot_factory(echo_secrets)
    with client_for(robot, pki) as client:
        error = expect_failure(client, _errors.RpcError)
        assert "********" in error.message
        error = expect_failure(client, _errors.RpcError, call="token")
        assert "********" in error.message


def test_client_repr_holds_no_secret(robot_factory, pki):
    robot = robot_factory(respond())
    with client_for(robot, pki) as client:
        client.auth("admin", PASSWORD)
        assert PASSWORD not in repr(client) and PASSWORD not in repr(vars(client))


# -- TLS without verification ---------------------------------------------------------------------

@pytest.mark.parametrize("which", ["untrusted", "wrong_name"])
def test_validate_certs_false_reaches_robots_with_unknown_certificates(robot_factory, pki, which):
    robot = robot_factory(respond(), certificate=getattr(pki, which))
    with client_for(robot, pki, validate_certs=False) as client:
        assert client.auth("admin", PASSWORD) == MINTED
        assert client.auth_with_token(TOKEN) == MINTED
    assert robot.requests[0].password == PASSWORD


def test_validate_certs_false_still_maps_failures(pki):
    with AuthClient("127.0.0.1", closed_port(), validate_certs=False, retries=0, timeout=3) as client:
        expect_failure(client, _errors.UnableToConnectToRobotError)


# -- the controller's own limits -----------------------------------------------------------------

def test_running_out_of_descriptors_is_the_controllers_error_not_the_robots(robot_factory, pki):
    robot = robot_factory(respond())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with client_for(robot, pki, retries=2) as client:
        # Every descriptor taken: the next socket gRPC or Python opens fails with EMFILE.
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(int(fd) for fd in os.listdir("/proc/self/fd")) + 64, hard))
        filler = []
        try:
            for _unused in range(100000):  # bounded by the limit just set
                filler.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        try:
            error = expect_failure(client, _errors.ControllerResourceError)
        finally:
            for fd in filler:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert error.retryable is False and "not the robot's fault" in error.message
        assert robot.requests == []
    with client_for(robot, pki) as fresh:  # with descriptors again, the same robot answers
        assert fresh.auth("admin", PASSWORD) == MINTED


# -- CA bundle ------------------------------------------------------------------------------------

def test_ca_bundle_must_be_readable_pem(tmp_path):
    missing = tmp_path / "missing.pem"
    with pytest.raises(_errors.InvalidOptionError, match="ca_cert: .* cannot be read"):
        read_ca_bundle(str(missing))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(_errors.InvalidOptionError, match="ca_cert: .* holds no PEM certificate"):
        read_ca_bundle(str(garbage))


def test_every_error_type_of_the_table_is_expected_by_a_test_of_this_module():
    # Static, because ansible-test spreads the tests over several processes: every error class named
    # in the unit tests is one a test provokes and checks with expect_failure or pytest.raises.
    expected = set()
    unit_plugins = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for path in glob.glob(os.path.join(unit_plugins, "**", "test_*.py"), recursive=True):
        with open(path) as handle:
            expected.update(re.findall(r"_errors\.(\w+Error)\b", handle.read()))
    assert set(_errors.error_types()) - expected == set()
