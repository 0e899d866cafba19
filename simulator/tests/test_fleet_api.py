# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python fleet API, fleet files, inventory and the control API (in process)."""

import json
import os
import stat

import pytest
import yaml

from spot_auth_sim import wire
from spot_auth_sim.control import ControlClient, ControlError
from spot_auth_sim.fleet import FleetConfigError, build_spec, load_fleet_file, spec_from_mapping
from spot_auth_sim.testing import Fleet, get_auth_token, read_inventory

pytestmark = pytest.mark.timeout(60)


def test_fleet_exposes_each_robot(tmp_path):
    with Fleet(robots=3, faults={"robot-2": "slow"}, password="pw", out_dir=str(tmp_path)) as fleet:
        assert len(fleet) == 3
        assert [r.name for r in fleet] == ["robot-001", "robot-002", "robot-003"]
        assert len({r.port for r in fleet}) == 3
        assert len({r.serial for r in fleet}) == 3
        robot = fleet.robot("robot-2")
        assert robot is fleet["robot-002"] is fleet[1]
        assert robot.fault_names == ["slow"]
        assert robot.username == "admin" and robot.password == "pw"
        assert robot.ca_pem == fleet.ca_pem and robot.ca_pem.startswith(b"-----BEGIN CERTIFICATE-----")
        assert robot.ca_path == fleet.ca_path == str(tmp_path / "ca.pem")
        assert robot.address == "127.0.0.1:%d" % robot.port
        assert "pw" not in repr(robot)


def test_generated_passwords_differ_per_robot():
    with Fleet(robots=3) as fleet:
        assert len({r.password for r in fleet}) == 3


def test_own_temp_dir_is_removed():
    with Fleet(robots=1) as fleet:
        directory = fleet.out_dir
        assert os.path.exists(os.path.join(directory, "ca.pem"))
    assert not os.path.exists(directory)


def test_write_inventory(tmp_path):
    with Fleet(robots=2, legacy=["2"], faults={"1": "flaky:1"}) as fleet:
        path = fleet.write_inventory(str(tmp_path / "inv"))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as handle:
            data = yaml.safe_load(handle)
        group = data["all"]["children"]["spot"]
        assert group["vars"]["spot_ca_cert"] == str(tmp_path / "inv" / "ca.pem")
        assert group["vars"]["ansible_connection"] == "local"
        host = group["hosts"]["robot-001"]
        robot = fleet[0]
        assert host == {"ansible_host": "127.0.0.1", "spot_port": robot.port, "spot_username": "admin",
                        "spot_password": robot.password, "spot_serial": robot.serial,
                        "spot_sim_faults": ["flaky:1"]}
        assert group["hosts"]["robot-002"]["spot_app_token"] == fleet.app_token
        infos = read_inventory(path)
        assert [i.port for i in infos] == [r.port for r in fleet]
        assert infos[0].ca_pem == fleet.ca_pem
        assert not [n for n in os.listdir(tmp_path / "inv") if n.endswith(".tmp")]


def test_custom_users_and_usernames():
    users = [{"username": "operator", "password": "op", "permissions": ["read"]}]
    with Fleet(robots=1, username="spot", password="sp", users=users, rate_limit=0) as fleet:
        robot = fleet[0]
        assert robot.usernames == ["spot", "operator"]
        assert get_auth_token(robot, username="spot", password="sp").status == wire.STATUS_OK
        assert get_auth_token(robot, username="operator", password="op").status == wire.STATUS_OK


def test_build_spec_errors():
    with pytest.raises(FleetConfigError, match="no robot named"):
        build_spec(robots=2, faults={"robot-9": "slow"})
    with pytest.raises(FleetConfigError, match="unknown fault"):
        build_spec(robots=2, faults={"robot-1": "exploding"})
    with pytest.raises(FleetConfigError):
        build_spec(robots=0)
    with pytest.raises(FleetConfigError, match="unique"):
        build_spec(robots=[{"name": "a"}, {"name": "a"}])
    with pytest.raises(FleetConfigError, match="unknown settings"):
        build_spec(settings={"lockout": 3})
    with pytest.raises(FleetConfigError):
        build_spec(settings={"rate_limit": -1})
    with pytest.raises(FleetConfigError, match="must be a number"):
        build_spec(settings={"lockout_seconds": "soon"})
    with pytest.raises(FleetConfigError, match="whole number"):
        build_spec(settings={"lockout_threshold": 2.5})
    assert build_spec(settings={"lockout_threshold": "3", "rate_limit": 2}).settings.lockout_threshold == 3
    with pytest.raises(TypeError):
        Fleet(robots=1, bogus=1)


def test_names_widen_for_big_fleets():
    spec = build_spec(robots=1000)
    assert spec.robots[0].name == "robot-0001" and spec.robots[-1].name == "robot-1000"


@pytest.mark.parametrize("suffix", [".yml", ".json"])
def test_fleet_file(tmp_path, suffix):
    data = {
        "robots": [
            {"name": "alpha", "serial": "BD-001", "password": "a-pass"},
            {"name": "beta", "faults": ["flaky:1"], "legacy": True},
            {"port": 0, "users": {"viewer": "v"}},
        ],
        "username": "admin",
        "users": [{"username": "ops", "password": "o", "permissions": ["read"]}],
        "faults": {"alpha": "internal"},
        "legacy": [],
        "settings": {"lockout_threshold": 3, "rate_limit": 0, "token_lifetime": 600},
    }
    path = tmp_path / ("fleet" + suffix)
    path.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    spec = spec_from_mapping(load_fleet_file(str(path)), lockout_threshold=4)
    assert [r.name for r in spec.robots] == ["alpha", "beta", "robot-003"]
    assert spec.robots[0].serial == "BD-001" and spec.robots[0].faults == ["internal"]
    assert spec.robots[1].legacy and spec.robots[1].faults == ["flaky:1"]
    assert [u["username"] for u in spec.robots[2].users] == ["ops", "viewer"]
    assert spec.settings.lockout_threshold == 4  # the override wins
    assert spec.settings.token_lifetime == 600
    with Fleet.from_file(str(path), rate_limit=0) as fleet:
        alpha = fleet.robot("alpha")
        assert alpha.password == "a-pass"
        assert get_auth_token(alpha, username="admin", password="a-pass").header.error.code == \
            wire.CODE_INTERNAL_SERVER_ERROR
        assert get_auth_token(fleet.robot("robot-003"), username="viewer", password="v").status == wire.STATUS_OK


def test_bad_fleet_files(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("robots: [1, 2")
    with pytest.raises(FleetConfigError, match="not valid YAML"):
        load_fleet_file(str(bad))
    bad.write_text("robotz: 3")
    with pytest.raises(FleetConfigError, match="unknown keys"):
        load_fleet_file(str(bad))
    with pytest.raises(FleetConfigError, match="cannot read"):
        load_fleet_file(str(tmp_path / "missing.yml"))


def test_port_base(tmp_path):
    import socket

    taken = []
    for _attempt in range(20):  # a free port's neighbour may be taken, or another process may take either meanwhile
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        try:
            fleet = Fleet(robots=2, port_base=base, faults={"2": "down"}).start()
        except OSError:
            taken.append(base)
            continue
        with fleet:
            assert [r.port for r in fleet] == [base, base + 1]
        return
    pytest.fail("no two free consecutive ports on 127.0.0.1 in 20 tries: %s" % taken)


def test_control_api_in_process(tmp_path):
    with Fleet(robots=2, out_dir=str(tmp_path), control=True, rate_limit=0) as fleet:
        info = json.loads((tmp_path / "control.json").read_text())
        assert stat.S_IMODE(os.stat(tmp_path / "control.json").st_mode) == 0o600
        client = ControlClient.from_dir(str(tmp_path))
        assert client.url == info["url"] == fleet.control_address
        robot = fleet[0]
        get_auth_token(robot, username="admin", password=robot.password)
        get_auth_token(robot, username="admin", password="wrong")
        described = client.fleet()
        assert [r["name"] for r in described["robots"]] == ["robot-001", "robot-002"]
        assert described["settings"]["lockout_threshold"] == 6
        assert client.robot("1")["request_count"] == 2
        records = client.requests("robot-001")
        assert records["count"] == 2
        assert [r["outcome"] for r in records["requests"]] == ["STATUS_OK", "STATUS_INVALID_LOGIN"]
        text = json.dumps(described) + json.dumps(records)
        assert robot.password not in text and "wrong" not in text
        assert client.lockout("robot-001", "admin")["failures"] == 1
        assert client.set_password("robot-001", "admin", "via-control")["generation"] == 2
        assert robot.password == "via-control"
        assert get_auth_token(robot, username="admin", password="via-control").status == wire.STATUS_OK
        token = client.mint_token("robot-001", lifetime=-1)
        assert get_auth_token(robot, token=token).status == wire.STATUS_INVALID_TOKEN
        assert client.app_tokens()["valid"] == fleet.app_token
        client.reset("robot-001")
        assert client.requests("robot-001")["count"] == 0
        client.reset()
        with pytest.raises(ControlError) as info_404:
            client.requests("robot-404")
        assert info_404.value.status == 404
        with pytest.raises(ControlError) as info_user:
            client.set_password("robot-001", "nobody", "x")
        assert info_user.value.status == 404
        client.set_password("robot-001", "nobody", "x", create=True)
        with pytest.raises(ControlError) as info_key:
            ControlClient(client.url, "wrong-key").fleet()
        assert info_key.value.status == 401
    assert fleet.control_server is None


def test_a_fleet_whose_process_vanished_is_cleaned_up_by_the_next(tmp_path, monkeypatch):
    import re
    import subprocess
    import sys
    import tempfile

    # A process that starts a fleet and leaves through os._exit (as a forked test process does) runs no cleanup.
    script = "import os; from spot_auth_sim.fleet import Fleet; Fleet(robots=1, rate_limit=0).start(); os._exit(0)"
    child = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, TMPDIR=str(tmp_path)),
                           capture_output=True, text=True, timeout=60, check=False)
    assert child.returncode == 0, child.stderr
    (orphaned,) = os.listdir(str(tmp_path))
    assert re.match(r"spot-auth-sim-\d+-", orphaned), orphaned
    alive = tmp_path / "spot-auth-sim-1-kept"  # pid 1 is alive: its directory stays
    alive.mkdir()
    unrelated = tmp_path / "spot-auth-sim-notapid"
    unrelated.mkdir()

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with Fleet(robots=1, rate_limit=0) as fleet:
        assert os.path.dirname(fleet.out_dir) == str(tmp_path)
        assert sorted(os.listdir(str(tmp_path))) == sorted([os.path.basename(fleet.out_dir), alive.name, unrelated.name])
    assert sorted(os.listdir(str(tmp_path))) == sorted([alive.name, unrelated.name])
