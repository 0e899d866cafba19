# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Random answers and random option values: no crash, every outcome typed."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.spot.auth.plugins.module_utils import _errors, _wire
from ansible_collections.spot.auth.plugins.module_utils._client import AuthClient, interpret_response
from ansible_collections.spot.auth.plugins.module_utils._options import OPTION_SPEC, settings_from
from ansible_collections.spot.auth.tests.unit.conftest import PASSWORD

try:
    from google.protobuf.message import DecodeError
except ImportError:  # the import sanity test runs without protobuf
    DecodeError = ValueError


def interpret_bytes(data):
    """What the client makes of raw response bytes: (error, token)."""
    try:
        response = _wire.parse_response(data)
    except DecodeError:
        # grpc's own words when the response deserializer raises
        return _errors.error_for_grpc("INTERNAL", "Exception deserializing response!", "robot", 443), None
    return interpret_response(response, "robot", 443)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_are_a_token_or_a_typed_error(data):
    error, token = interpret_bytes(data)
    assert (error is None) != (token is None)
    if error is not None:
        assert isinstance(error, _errors.SpotAuthError) and error.error_type in _errors.error_types()
        assert error.error_type != "RpcError"  # every answer maps to a specific row


@settings(max_examples=400, deadline=None)
@given(header_code=st.one_of(st.none(), st.integers(-5, 2 ** 31 - 1)),
       status=st.integers(-5, 2 ** 31 - 1),
       token=st.text(max_size=40),
       message=st.text(max_size=40))
def test_random_field_values_are_a_token_or_a_typed_error(header_code, status, token, message):
    response = _wire.messages.GetAuthTokenResponse()
    if header_code is not None:
        response.header.error.code = header_code
        response.header.error.message = message
    response.status = status
    response.token = token
    error, got = interpret_response(_wire.parse_response(response.SerializeToString()), "robot", 443)
    ok = header_code == 1 and status == 1 and 0 < len(token) and all("!" <= char <= "~" for char in token)
    assert (error is None) == ok
    if ok:
        assert got == token
    else:
        assert error.error_type in _errors.error_types()


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=300),
    st.binary(max_size=20), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(OPTION_SPEC) + ["bogus"]), VALUES, max_size=8))
def test_random_options_are_settings_or_an_error_naming_the_option(params):
    try:
        settings_from(params)
    except _errors.InvalidOptionError as error:
        assert error.option in OPTION_SPEC or error.option == "bogus"
        assert str(error).startswith("option %s: " % error.option)


@pytest.fixture(scope="module")
def random_robot(pki):
    from ansible_collections.spot.auth.tests.unit.conftest import ScriptedRobot
    robot = ScriptedRobot(pki.good, [lambda request, context: robot.next_answer])
    robot.next_answer = b""
    yield robot
    robot.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=256))
def test_random_answers_over_real_grpc_are_typed(random_robot, pki, data):
    random_robot.next_answer = data
    with AuthClient("127.0.0.1", random_robot.port, root_certificates=pki.roots, retries=0, timeout=5) as client:
        try:
            token = client.auth("admin", PASSWORD)
        except _errors.SpotAuthError as error:
            assert error.error_type in _errors.error_types()
            assert PASSWORD not in error.message
        else:
            assert isinstance(token, str) and token
