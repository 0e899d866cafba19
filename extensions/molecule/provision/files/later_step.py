# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A later CI step: authenticate with bosdyn-client from the provisioned token cache, without a password.

Usage: later_step.py TOKENS_JSON CA_PEM ROBOT...
Reads each robot's token with the SDK's TokenCacheFilesystem and re-mints it over TLS; prints one line per robot.
"""

import json
import os
import sys

from bosdyn.client import create_standard_sdk
from bosdyn.client.auth import AuthClient
from bosdyn.client.token_cache import TokenCacheFilesystem


def main(tokens_path, ca_path, robots):
    with open(tokens_path) as handle:
        tokens = json.load(handle)
    for name in robots:
        entry = tokens[name]
        cache = TokenCacheFilesystem(os.path.dirname(entry["cache_file"]))
        token = cache.read(entry["sdk_cache_name"]).decode("ascii")
        sdk = create_standard_sdk("later-step", cert_resource_glob=ca_path)
        robot = sdk.create_robot(entry["hostname"])
        robot.update_secure_channel_port(entry["port"])
        fresh = robot.ensure_client(AuthClient.default_service_name).auth_with_token(token, timeout=10)
        print("%s: re-minted from the SDK cache: %s" % (name, bool(fresh) and fresh != token))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
