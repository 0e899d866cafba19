# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The package builds into a wheel that carries the generated descriptor and the console script."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.timeout(120)

SIMULATOR_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_FILES = ("__init__.py", "__main__.py", "_wire_descriptor.py", "cli.py", "control.py", "fleet.py",
                 "pki.py", "robot.py", "testing.py", "tokens.py", "wire.py")


def test_every_module_carries_the_license_header():
    for directory in ("spot_auth_sim", "tests"):
        for name in os.listdir(os.path.join(SIMULATOR_DIR, directory)):
            if name.endswith(".py"):
                with open(os.path.join(SIMULATOR_DIR, directory, name), encoding="utf-8") as handle:
                    head = handle.read(600)
                assert "# GNU General Public License v3.0+" in head, name
                assert "# SPDX-License-Identifier: GPL-3.0-or-later" in head, name


def test_wheel_contents(tmp_path):
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building needs setuptools >= 77 (SPDX license expression), this is %s" % setuptools.__version__)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(SIMULATOR_DIR, name), str(source / name))
    shutil.copytree(os.path.join(SIMULATOR_DIR, "spot_auth_sim"), str(source / "spot_auth_sim"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "--no-index", "-q", "-w", str(tmp_path / "dist"), str(source)],
                            check=False, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stderr
    (wheel,) = list((tmp_path / "dist").glob("spot_auth_sim-0.1.0-*.whl"))
    with zipfile.ZipFile(str(wheel)) as archive:
        names = set(archive.namelist())
        for name in PACKAGE_FILES:
            assert "spot_auth_sim/" + name in names
        metadata = archive.read("spot_auth_sim-0.1.0.dist-info/METADATA").decode()
        entry_points = archive.read("spot_auth_sim-0.1.0.dist-info/entry_points.txt").decode()
    assert not any(name.startswith("tests/") for name in names)
    assert "spot-auth-sim = spot_auth_sim.cli:main" in entry_points
    assert "Requires-Python: >=3.9" in metadata
    assert "License-Expression: GPL-3.0-or-later" in metadata
    for requirement in ("grpcio>=1.60", "protobuf>=4.25", "cryptography>=42", "pyyaml>=6"):
        assert "Requires-Dist: " + requirement in metadata
