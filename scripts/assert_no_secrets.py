# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fail when a log holds anything shaped like a Spot user token (a JWT) or one of the given secrets.

    python scripts/assert_no_secrets.py LOG [LOG ...] [--secret TEXT ...]

scripts/test.sh runs it over the logs of molecule and ansible-test integration, whose plays the
pytest suite cannot search itself.
"""

import argparse
import sys

from spot_auth_sim.testing import JWT_SHAPE


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+")
    parser.add_argument("--secret", action="append", default=[])
    args = parser.parse_args(argv)
    leaks = 0
    for path in args.logs:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if JWT_SHAPE.search(line) or any(secret and secret in line for secret in args.secret):
                    print("%s:%d: a token or secret appears here" % (path, number), file=sys.stderr)
                    leaks += 1
    if leaks:
        return 1
    print("no token or secret in %s" % ", ".join(args.logs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
