# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Option handling: every bad value fails before any network call, naming the option, showing no secret."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.spot.auth.plugins.module_utils._errors import InvalidOptionError
from ansible_collections.spot.auth.plugins.module_utils._options import OPTION_SOURCES, OPTION_SPEC, SECRET_OPTIONS, apply_fallbacks, settings_from

SECRET = "Pass-w0rd-Secret-91"
GOOD = {"hostname": "robot-1.example", "username": "admin", "password": SECRET}


def with_(**changes):
    params = dict(GOOD)
    params.update(changes)
    return {name: value for name, value in params.items() if value is not ...}


BAD = [
    (with_(port=0), "port"),
    (with_(port=65536), "port"),
    (with_(port=-1), "port"),
    (with_(port="twelve"), "port"),
    (with_(port="443x"), "port"),
    (with_(port=True), "port"),
    (with_(port=4.5), "port"),
    (with_(timeout=0), "timeout"),
    (with_(timeout=-3), "timeout"),
    (with_(timeout=601), "timeout"),
    (with_(timeout="soon"), "timeout"),
    (with_(timeout=True), "timeout"),
    (with_(retries=-1), "retries"),
    (with_(retries=11), "retries"),
    (with_(retries="many"), "retries"),
    (with_(hostname=...), "hostname"),
    (with_(hostname=""), "hostname"),
    (with_(hostname="robot one"), "hostname"),
    (with_(hostname="robot\n1"), "hostname"),
    (with_(hostname="a" * 300), "hostname"),
    (with_(hostname="-robot.example"), "hostname"),
    (with_(hostname="robot..example"), "hostname"),
    (with_(hostname=["robot"]), "hostname"),
    (with_(authority=""), "authority"),
    (with_(authority="auth spot robot"), "authority"),
    (with_(authority="auth.spot.robot/x"), "authority"),
    (with_(username=...), "username"),
    (with_(password=..., token=...), "password"),
    (with_(token="a.b.c"), "token"),
    (with_(password={"nested": SECRET}), "password"),
    (with_(password=12345), "password"),
    (with_(password=SECRET + "\x00"), "password"),
    (with_(password="x" * 20000), "password"),
    (with_(token=["x"], password=...), "token"),
    (with_(app_token=7), "app_token"),
    (with_(username="ad\x07min"), "username"),
    (with_(username="u" * 300), "username"),
    (with_(client_name="c\r\n"), "client_name"),
    (with_(validate_certs="perhaps"), "validate_certs"),
    (with_(ca_cert="/nonexistent/ca.pem"), "ca_cert"),
    (with_(token_cache_margin=-5), "token_cache_margin"),
    (with_(token_cache_margin="later"), "token_cache_margin"),
    (with_(serial={"a": 1}), "serial"),
    (with_(unknown_option=1), "unknown_option"),
]


@pytest.mark.parametrize("params, option", BAD, ids=["%s-%d" % (option, n) for n, (dummy, option) in enumerate(BAD)])
def test_bad_values_name_the_option_and_hide_secrets(params, option):
    with pytest.raises(InvalidOptionError) as info:
        settings_from(params)
    assert info.value.option == option
    assert str(info.value).startswith("option %s: " % option)
    assert SECRET not in str(info.value) and "Secret" not in repr(info.value)
    assert info.value.error_type == "InvalidOptionError"


def test_ca_cert_that_is_not_pem(tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    with pytest.raises(InvalidOptionError, match="option ca_cert: .* holds no PEM certificate"):
        settings_from(with_(ca_cert=str(not_pem)))
    directory = tmp_path / "dir.pem"
    directory.mkdir()
    with pytest.raises(InvalidOptionError, match="option ca_cert: .* is not a regular file"):
        settings_from(with_(ca_cert=str(directory)))


def test_good_values_are_normalised():
    settings = settings_from(with_(port="8443", timeout="2.5", retries="0", validate_certs="no", hostname="[::1]", serial=1234))
    assert (settings.port, settings.timeout, settings.retries, settings.validate_certs) == (8443, 2.5, 0, False)
    assert settings.hostname == "::1" and settings.serial == "1234" and settings.method == "password"
    assert SECRET not in repr(settings)
    defaults = settings_from(GOOD)
    assert (defaults.port, defaults.authority, defaults.timeout, defaults.retries) == (443, "auth.spot.robot", 10.0, 3)


def test_fallbacks_order_and_token_keeps_passwords_away():
    host_vars = {"ansible_host": "10.1.1.1", "spot_port": 8443, "spot_username": "from-vars", "spot_password": "var-pass"}
    environ = {"BOSDYN_CLIENT_USERNAME": "from-env", "BOSDYN_CLIENT_PASSWORD": "env-pass"}
    merged = apply_fallbacks({"username": "direct"}, host_vars, environ)
    assert (merged["hostname"], merged["port"], merged["username"], merged["password"]) == ("10.1.1.1", 8443, "direct", "var-pass")
    assert apply_fallbacks({}, {}, environ)["password"] == "env-pass"
    reminting = apply_fallbacks({"token": "t.o.k"}, host_vars, environ)
    assert reminting.get("password") is None and settings_from(reminting).method == "token"


def test_every_option_is_documented_once_in_the_fragment():
    import yaml
    from ansible_collections.spot.auth.plugins.doc_fragments.token import ModuleDocFragment
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(documented) == set(OPTION_SPEC)
    for name, spec in OPTION_SPEC.items():
        assert documented[name]["type"] == spec["type"], name
        assert documented[name].get("default") == spec.get("default"), name
    plugin_sources = yaml.safe_load(ModuleDocFragment.PLUGINS)["options"]
    assert set(plugin_sources) <= set(OPTION_SPEC)
    for name in OPTION_SPEC:
        documented_sources = plugin_sources.get(name) or {}
        sources = {
            "var": [entry["name"] for entry in documented_sources.get("vars", [])],
            "env": [entry["name"] for entry in documented_sources.get("env", [])],
            "ini": [entry["key"] for entry in documented_sources.get("ini", []) if entry["section"] == "spot_auth"],
        }
        expected = {kind: [OPTION_SOURCES[name][kind]] if kind in OPTION_SOURCES.get(name, {}) else [] for kind in ("var", "env", "ini")}
        assert sources == expected, name
    for name in SECRET_OPTIONS:
        assert "ini" not in OPTION_SOURCES.get(name, {})  # ansible.cfg is no place for a secret


def test_fallbacks_go_arguments_host_variables_environment_then_ansible_cfg():
    config = {"session": "false", "port": "9443", "timeout": "4"}
    merged = apply_fallbacks({"timeout": 2}, {"spot_port": 8443}, {"SPOT_AUTH_SESSION": "true"}, config)
    assert (merged["timeout"], merged["port"], merged["session"]) == (2, 8443, "true")
    merged = apply_fallbacks({}, {}, {"SPOT_AUTH_SESSION": ""}, config)  # an empty variable is unset
    assert (merged["port"], merged["session"], merged["timeout"]) == ("9443", "false", "4")
    assert "validate_certs" not in merged  # nothing found: the default applies in settings_from


@pytest.mark.parametrize("name, value", [
    ("validate_certs", "ture"), ("validate_certs", "2"), ("validate_certs", 2), ("session", "maybe"), ("session", ["yes"]),
    ("port", True), ("port", 443.5), ("port", "0x1bb"), ("retries", False), ("timeout", "nan"), ("timeout", float("inf")),
    ("hostname", "127.0.0.1:443"), ("hostname", "robot.example:443"), ("hostname", "[::1]:443"), ("hostname", "[::1"),
    ("hostname", "[::1]]"), ("hostname", "[zz::1]"), ("hostname", "::1::2"), ("hostname", "999.1.1.1"), ("hostname", "1.2.3"),
    ("authority", "auth.spot.robot:443"), ("username", 7), ("client_name", 1.5), ("token_cache", ["a"]),
])
def test_strict_values_refused_by_the_one_parser(name, value):
    with pytest.raises(InvalidOptionError) as info:
        settings_from(with_(**{name: value}))
    assert info.value.option == name


def test_addresses_accepted():
    for given, kept in (("[::1]", "::1"), ("::1", "::1"), ("fe80::1%eth0", "fe80::1%eth0"), ("10.0.0.7", "10.0.0.7"),
                        ("robot-7.example.", "robot-7.example."), ("spot_7", "spot_7")):
        assert settings_from(with_(hostname=given)).hostname == kept


def test_a_secret_of_the_wrong_type_is_described_by_its_type_only():
    for value in ([SECRET], {"k": SECRET}, 12345, 1.5, True):
        with pytest.raises(InvalidOptionError) as info:
            settings_from(with_(password=value))
        assert "a value of type %s" % type(value).__name__ in str(info.value)
        assert SECRET not in str(info.value) and "12345" not in str(info.value)
