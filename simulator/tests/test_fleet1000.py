# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""1000 robots start in a subprocess and each answers one login. Deselect: -m 'not fleet1000'."""

import asyncio
import time

import grpc
import pytest

from spot_auth_sim import wire
from spot_auth_sim.pki import AUTH_AUTHORITY
from spot_auth_sim.testing import SubprocessFleet

ROBOTS = 1000
CONCURRENCY = 64
START_BOUND = 30.0
LOGIN_BOUND = 60.0


async def _login_all(robots, ca_pem):
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
    options = [("grpc.ssl_target_name_override", AUTH_AUTHORITY), ("grpc.use_local_subchannel_pool", 1)]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(robot):
        async with gate:
            async with grpc.aio.secure_channel("%s:%d" % (robot.host, robot.port), credentials,
                                               options=options) as channel:
                call = channel.unary_unary(wire.GET_AUTH_TOKEN_PATH,
                                           request_serializer=lambda m: m.SerializeToString(),
                                           response_deserializer=wire.GetAuthTokenResponse.FromString)
                request = wire.build_request(username=robot.username, password=robot.password)
                response = await call(request, timeout=30)
                return response.status

    return await asyncio.wait_for(asyncio.gather(*(one(robot) for robot in robots)), LOGIN_BOUND)


@pytest.mark.fleet1000
@pytest.mark.timeout(240)
def test_thousand_robots(capsys):
    with SubprocessFleet(robots=ROBOTS, start_timeout=120, stop_timeout=30) as sim:
        startup = sim.startup_seconds
        rss_idle = sim.rss_bytes()
        assert len(sim.robots) == ROBOTS
        assert len({r.port for r in sim.robots}) == ROBOTS
        started = time.monotonic()
        statuses = asyncio.run(_login_all(sim.robots, sim.ca_pem))
        login_seconds = time.monotonic() - started
        rss_busy = sim.rss_bytes()
        assert statuses == [wire.STATUS_OK] * ROBOTS
        counts = [r["request_count"] for r in sim.control.fleet()["robots"]]
        assert counts == [1] * ROBOTS
    assert sim.returncode == 0
    with capsys.disabled():
        print("\n[fleet1000] start %.2f s (inventory written), one login per robot %.2f s, "
              "simulator RSS %.0f MiB idle / %.0f MiB after logins"
              % (startup, login_seconds, rss_idle / 2**20, rss_busy / 2**20))
    assert startup < START_BOUND
