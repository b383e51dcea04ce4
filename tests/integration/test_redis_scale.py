"""Fan-out cost in Redis: one PUBLISH per broadcast at 1,000 subscribers, counted by Redis itself.

Both tests use a private ``redis-server`` so ``INFO commandstats`` counts only their own traffic.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from tests.integration.redis_support import RedisServer, run_publisher, wait_until
from tests.integration.wsclient import connect, expect

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.kill()


class Counter:
    """Count ``tick`` frames per socket in the background."""

    def __init__(self, sockets):
        self.sockets = sockets
        self.counts = [0] * len(sockets)
        self.tasks = [asyncio.ensure_future(self._read(i, ws)) for i, ws in enumerate(sockets)]

    async def _read(self, index, ws):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("event") == "tick":
                self.counts[index] += 1

    async def close(self):
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def open_many(server, n: int, channel: str = "general") -> list:
    limit = asyncio.Semaphore(50)

    async def one():
        async with limit:
            ws = await connect(server.ws_url(f"/ws?channel={channel}"), max_queue=None)
            await expect(ws, "subscribed", timeout=30)
            return ws

    return list(await asyncio.gather(*(one() for _ in range(n))))


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}


async def test_one_publish_per_broadcast_at_1000_subscribers(server_factory, own_redis):
    # The variables this time (host and port, no URL).
    env = {
        "BROADCAST_DRIVER": "redis",
        "BROADCAST_REDIS_HOST": "127.0.0.1",
        "BROADCAST_REDIS_PORT": str(own_redis.port),
        "BROADCAST_REDIS_DATABASE": "2",
        "BROADCAST_CHANNELS_PREFIX": "scale:",
    }
    nodes = [server_factory("uvicorn", env=env), server_factory("daphne", env=env)]
    sockets = [ws for node in nodes for ws in await open_many(node, 500)]
    counter = Counter(sockets)
    broadcasts = 10
    try:
        before = own_redis.commandstats()
        results = await asyncio.to_thread(run_publisher, env, "general", broadcasts)
        assert all(r.get("id") for r in results), results
        await wait_until(lambda: min(counter.counts) >= broadcasts, 60, "every socket to get every broadcast")
        used = delta(own_redis.commandstats(), before)
        assert used.get("publish") == broadcasts, used
        assert used.get("evalsha", 0) <= broadcasts + 10, used  # the publishes, plus a few node heartbeats
        # Inside each EVALSHA: HGET, HINCRBY, XADD, 2 PEXPIRE and the PUBLISH; the rest is the
        # publisher's connection set-up and node heartbeats. Nothing per subscriber.
        assert sum(used.values()) < 12 * broadcasts + 40, used
        await asyncio.sleep(0.3)  # a negative check: give duplicates, if any, time to arrive
        assert counter.counts == [broadcasts] * len(sockets)  # exactly once each
    finally:
        await counter.close()


@pytest.mark.parametrize("layer", ["redis", "redis-pubsub"])
async def test_websocket_driver_over_channels_redis_delivers_once_per_socket(
    server_factory, own_redis, layer
):
    env = {
        "BROADCAST_CHANNEL_LAYER": layer,
        "BROADCAST_CHANNEL_LAYER_PREFIX": f"layer-{uuid.uuid4().hex[:8]}",
        "BROADCAST_REDIS_HOST": "127.0.0.1",
        "BROADCAST_REDIS_PORT": str(own_redis.port),
    }
    nodes = [server_factory("daphne", env=env), server_factory("uvicorn", env=env)]
    sockets = [ws for node in nodes for ws in await open_many(node, 100)]
    counter = Counter(sockets)
    broadcasts = 10
    try:
        before = own_redis.commandstats()
        await asyncio.to_thread(run_publisher, env, "general", broadcasts)
        await wait_until(lambda: min(counter.counts) >= broadcasts, 30, "every socket to get every broadcast")
        used = delta(own_redis.commandstats(), before)
        # One group message per server process, not per socket: channels_redis spends about a
        # dozen commands per broadcast per process (send, then the process's blocking receive),
        # whatever the number of sockets (200 here).
        assert sum(used.values()) < 20 * broadcasts * len(nodes) < len(sockets) * broadcasts, used
        await asyncio.sleep(0.3)  # a negative check: give duplicates, if any, time to arrive
        assert counter.counts == [broadcasts] * len(sockets)
    finally:
        await counter.close()
