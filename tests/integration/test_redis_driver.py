"""The redis driver across real server processes: one PUBLISH per broadcast, exactly once per socket."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.redis_support import collect, redis_env, run_publisher, wait_until
from tests.integration.wsclient import connect, expect, nothing

pytestmark = pytest.mark.integration


async def open_clients(server, channel: str, n: int) -> list:
    clients = []
    for _ in range(n):
        ws = await connect(server.ws_url(f"/ws?channel={channel}"))
        await expect(ws, "subscribed")
        clients.append(ws)
    return clients


async def test_every_node_receives_each_broadcast_exactly_once(server_factory, redis_url, redis_prefix):
    env = redis_env(redis_url, redis_prefix)
    nodes = [server_factory("daphne", env=env), server_factory("uvicorn", env=env)]
    clients = [ws for node in nodes for ws in await open_clients(node, "general", 3)]
    try:
        results = await asyncio.to_thread(run_publisher, env, "general", 20)
        assert all("id" in r and r["id"] for r in results), results
        for ws in clients:
            frames = await collect(ws, "tick", 20)
            assert [f["data"]["n"] for f in frames] == list(range(20))
            assert [f["id"] for f in frames] == [r["id"] for r in results]
            await nothing(ws, 0.3)
    finally:
        for ws in clients:
            await ws.close()


async def test_channels_prefix_keeps_apps_apart(server_factory, redis_url, redis_prefix):
    mine = server_factory("uvicorn", env=redis_env(redis_url, redis_prefix))
    other_env = redis_env(redis_url, redis_prefix + "other:")
    other = server_factory("uvicorn", env=other_env)
    [a] = await open_clients(mine, "general", 1)
    [b] = await open_clients(other, "general", 1)
    try:
        await asyncio.to_thread(run_publisher, other_env, "general", 1)
        assert (await expect(b, "tick"))["data"] == {"n": 0}
        await nothing(a, 0.5)
    finally:
        await a.close()
        await b.close()


async def test_each_process_subscribes_once_per_channel(
    server_factory, redis_url, redis_prefix, redis_client
):
    env = redis_env(redis_url, redis_prefix)
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    name = f"{redis_prefix}general"

    def subscribers() -> int:
        return dict(redis_client.pubsub_numsub(name))[name]

    on_a = await open_clients(a, "general", 5)
    on_b = await open_clients(b, "general", 5)
    try:
        assert subscribers() == 2  # two processes, ten sockets
        for ws in on_a:
            await ws.close()
        await wait_until(lambda: subscribers() == 1, 10, "node A to unsubscribe after its last socket")
        for ws in on_b[:4]:
            await ws.close()
        await nothing(on_b[4], 0.3)
        assert subscribers() == 1  # one socket left on B keeps its subscription
        await on_b[4].close()
        await wait_until(lambda: subscribers() == 0, 10, "node B to unsubscribe")
    finally:
        for ws in on_a + on_b:
            await ws.close()
