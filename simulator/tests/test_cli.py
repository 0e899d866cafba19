# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The spot-auth-sim command in a subprocess, reached through its inventory and control API."""

import os
import signal
import stat
import subprocess
import sys
import time

import grpc
import pytest
import yaml

from spot_auth_sim import wire
from spot_auth_sim.testing import SubprocessFleet, get_auth_token

pytestmark = pytest.mark.timeout(90)

SIMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, timeout=30):
    env = dict(os.environ, PYTHONPATH=SIMULATOR_DIR)
    return subprocess.run([sys.executable, "-m", "spot_auth_sim", *args], check=False, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_help_reads_well():
    result = run_cli("--help")
    assert result.returncode == 0
    for text in ("--robots", "--out", "--fault", "--fleet", "--lockout-threshold", "--lockout-seconds",
                 "--rate-limit", "--token-lifetime", "--latency-ms", "--legacy", "--username", "--password",
                 "--slow-seconds", "flaky:K", "wrong-name", "inventory.yml", "ansible-playbook"):
        assert text in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 100


@pytest.mark.parametrize("args, message", [
    (["--robots", "2", "--out", "x", "--fault", "robot-5=slow"], "no robot named"),
    (["--robots", "2", "--out", "x", "--fault", "robot-1"], "ROBOT=FAULT"),
    (["--robots", "2", "--out", "x", "--fault", "robot-1=boom"], "unknown fault"),
    (["--robots", "0", "--out", "x"], "at least 1"),
    (["--robots", "1"], "--out"),
])
def test_bad_arguments_exit_2(tmp_path, args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_cli_end_to_end(tmp_path):
    out = tmp_path / "fleet"
    sim = SubprocessFleet(robots=3, faults={"robot-3": "down"}, out_dir=str(out),
                          args=["--lockout-threshold", "2", "--legacy", "robot-2"], start_timeout=30)
    with sim:
        assert stat.S_IMODE(os.stat(sim.inventory_path).st_mode) == 0o600
        with open(sim.inventory_path) as handle:
            inventory = yaml.safe_load(handle)
        group = inventory["all"]["children"]["spot"]
        assert sorted(group["hosts"]) == ["robot-001", "robot-002", "robot-003"]
        assert group["vars"]["spot_ca_cert"] == str(out / "ca.pem")
        assert os.path.isabs(group["vars"]["spot_ca_cert"])
        ready = (out / "sim-stdout.log").read_text()
        assert "3 robots ready" in ready and "(1 down)" in ready

        robot = sim["robot-001"]
        response = get_auth_token(robot, username=robot.username, password=robot.password)
        assert response.status == wire.STATUS_OK
        legacy = sim["robot-002"]
        assert legacy.app_token
        assert get_auth_token(legacy, username=legacy.username, password=legacy.password,
                              application_token=legacy.app_token).status == wire.STATUS_OK
        with pytest.raises(grpc.RpcError) as refused:
            get_auth_token(sim["robot-003"], username="admin", password="x", timeout=5)
        assert "Connection refused" in refused.value.details()

        records = sim.control.requests("robot-001")
        assert records["count"] == 1
        assert records["requests"][0]["outcome"] == "STATUS_OK"
        assert records["requests"][0]["kind"] == "password"

        sim.control.set_password("robot-001", "admin", "rotated-password")
        assert get_auth_token(robot, username="admin", password=robot.password).status == \
            wire.STATUS_INVALID_LOGIN
        assert get_auth_token(robot, token=response.token).status == wire.STATUS_INVALID_TOKEN
        assert get_auth_token(robot, username="admin", password="rotated-password").status == wire.STATUS_OK
        assert sim.control.lockout("robot-001")["failures"] == 0
        sim.control.reset("robot-001")
        assert sim.control.requests("robot-001")["count"] == 0
        assert sim.rss_bytes() > 0
        pid = sim.pid
    assert sim.returncode == 0
    assert not (out / "control.json").exists()
    for log in ("sim-stdout.log", "sim-stderr.log"):
        text = (out / log).read_text()
        assert robot.password not in text and "rotated-password" not in text and response.token not in text
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_sigint_exits_0_and_fleet_file(tmp_path):
    fleet_file = tmp_path / "fleet.yml"
    fleet_file.write_text(yaml.safe_dump({
        "robots": [{"name": "north", "password": "n-pass"}, {"name": "south", "fault": "internal"}],
        "settings": {"rate_limit": 0},
    }))
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=SIMULATOR_DIR)
    process = subprocess.Popen([sys.executable, "-m", "spot_auth_sim", "--fleet", str(fleet_file), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (out / "inventory.yml").exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        hosts = yaml.safe_load((out / "inventory.yml").read_text())["all"]["children"]["spot"]["hosts"]
        assert hosts["north"]["spot_password"] == "n-pass"
        assert hosts["south"]["spot_sim_faults"] == ["internal"]
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, stderr
    assert stdout.count("\n") == 1 and "2 robots ready" in stdout
    assert "n-pass" not in stdout + stderr


def test_start_failure_is_reported(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("--robots", "1", "--out", str(tmp_path), "--port-base", str(port))
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert not (tmp_path / "inventory.yml").exists()


def test_watch_pid_stops_the_simulator(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        sim = SubprocessFleet(robots=1, out_dir=str(tmp_path), args=["--watch-pid", str(parent.pid)])
        with sim:
            process = sim.process
            parent.kill()
            parent.wait(10)
            assert process.wait(10) == 0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def test_console_script_if_installed():
    script = os.path.join(os.path.dirname(sys.executable), "spot-auth-sim")
    if not os.path.exists(script):
        pytest.skip("spot-auth-sim is not installed next to this Python")
    result = subprocess.run([script, "--help"], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "--robots" in result.stdout
