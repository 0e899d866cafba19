# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for ansible-test's get-pip bootstrap, whose download host is not reachable here.

ansible-test runs it inside an empty virtual environment with get-pip's arguments (pip options and
packages such as ``pip==24.2``). Python's own ensurepip provides a pip, which then installs the
requested packages from the configured package index. scripts/test.sh copies it to
~/.ansible/test/cache/get_pip_<version>.py before running ansible-test.
"""

import subprocess
import sys

# Options only get-pip understands; pip itself would reject them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main():
    # In a subprocess: ensurepip.bootstrap() in-process would drop the PIP_* settings (index, CA) from os.environ.
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    return subprocess.call([sys.executable, "-m", "pip", "install"] + args)


if __name__ == "__main__":
    sys.exit(main())
