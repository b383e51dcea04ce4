"""Stats across nodes: every server process reports to Redis; ``cluster_stats()`` adds them up."""

from __future__ import annotations

import asyncio

import pytest

from django_broadcasting.server.cluster import acluster_stats, cluster_stats
from tests.integration.redis_support import redis_env, wait_until
from tests.integration.wsclient import connect, expect

pytestmark = pytest.mark.integration

TTL = 2.0


async def test_each_node_reports_and_totals_add_up(server_factory, redis_url, redis_prefix, settings):
    env = redis_env(redis_url, redis_prefix, BROADCAST_STATS_INTERVAL=0.3, BROADCAST_PRESENCE_TTL=TTL)
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "redis",
        "REDIS_URL": redis_url,
        "CHANNELS_PREFIX": redis_prefix,
    }
    sockets = []
    try:
        for server, n in ((a, 1), (b, 2)):
            for _ in range(n):
                ws = await connect(server.ws_url("/ws?channel=general"))
                await expect(ws, "subscribed")
                sockets.append(ws)

        async def settled():
            report = await acluster_stats()
            return report["node_count"] == 2 and report["totals"]["connections"] == 3

        await wait_until(settled, 10, "both nodes to report their sockets")
        report = await asyncio.to_thread(cluster_stats)  # the sync shim, from a thread without a loop
        assert report["source"] == "redis"
        assert sorted(n["pid"] for n in report["nodes"]) == sorted([a.pid, b.pid])
        assert sorted(n["connections"] for n in report["nodes"]) == [1, 2]
        assert report["totals"]["channels"] == {"general": 3}
        assert report["totals"]["subscriptions"] == 3
        for node in report["nodes"]:
            assert node["transport"] == "RedisTransport"
            assert node["transport_state"]["connected"] is True and node["transport_state"]["channels"] == 1
    finally:
        for ws in sockets:
            await ws.close()
        b.kill()

    async def one_node_left():
        return (await acluster_stats())["node_count"] == 1

    # A killed node drops out of the report once its heartbeat expires (within PRESENCE_TTL).
    await wait_until(one_node_left, 2 * TTL, "the killed node to leave the report")
