"""Redis Sentinel: the primary is killed mid-stream and everything follows the failover by itself.

The set-up runs on real processes (``sentinel_support.SentinelSetup``): one primary, one replica,
three ``redis-sentinel`` (quorum 2, ``down-after-milliseconds`` 1000), two project servers
(daphne and uvicorn) on the ``redis`` backend configured only with ``BROADCAST_REDIS_SENTINELS``
and ``BROADCAST_REDIS_SENTINEL_MASTER``, and one publisher process that publishes in turn
through the sync API (its thread's blocking connection) and the async API (the pooled client).

What "acknowledged and reached the new primary" means here: replication is asynchronous, so a
message the old primary acknowledged just before it died may never reach the replica. A
subscriber on the *replica* sees every PUBLISH that was replicated to it (Redis replicates the
publish script's effects, PUBLISH included), until the promotion closes its connection. So the
messages that must reach every socket are those acknowledged and seen on the replica, plus
those acknowledged by a publish that started after the kill (only the new primary can have
acknowledged them). The count of acknowledged messages lost with the old primary is printed;
with replication on loopback it is usually 0.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time

import httpx
import pytest
import redis

from django_broadcasting.backends.redis import RedisKeys
from django_broadcasting.backends.redis.sentinel import SENTINEL_PUBLISH_SCRIPT
from django_broadcasting.messages import transport_payload
from tests.conftest import require_service
from tests.integration.redis_support import LastingPublisher, wait_until
from tests.integration.sentinel_support import SentinelSetup, sentinel_binary
from tests.integration.wsclient import connect, expect, make_token, recv

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFIX = "sentinel-test:"
CHANNEL = "failover"
STATS_TOKEN = "sentinel-stats-token-0123456789"


@pytest.fixture
def sentinel_setup():
    require_service(
        sentinel_binary() is not None and shutil.which("redis-server") is not None,
        "redis-server and redis-sentinel (Debian packages redis-server, redis-sentinel)",
    )
    setup = SentinelSetup().start()
    yield setup
    setup.stop()


def sentinel_env(setup: SentinelSetup) -> dict[str, str]:
    return {
        "BROADCAST_DRIVER": "redis",
        "BROADCAST_REDIS_SENTINELS": setup.sentinels_setting,
        "BROADCAST_REDIS_SENTINEL_MASTER": setup.master,
        "BROADCAST_CHANNELS_PREFIX": PREFIX,
        "BROADCAST_REDIS_SOCKET_TIMEOUT": "2",
    }


class Reader:
    """Every ``tick`` a socket receives, as (n, id), read in the background."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ticks: list[tuple[int, str]] = []
        self.arrived: dict[int, float] = {}  # n -> when (monotonic)
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            frame = json.loads(await self.ws.recv())
            if frame.get("event") == "tick":
                self.ticks.append((frame["data"]["n"], frame.get("id")))
                self.arrived[frame["data"]["n"]] = time.monotonic()

    @property
    def numbers(self) -> list[int]:
        return [n for n, _ in self.ticks]

    async def close(self) -> None:
        self.task.cancel()
        await self.ws.close()


class ReplicaMonitor:
    """Subscribe on the replica: which published messages were replicated before the promotion."""

    def __init__(self, port: int) -> None:
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=None)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(PREFIX + CHANNEL)
        self.pubsub.get_message(timeout=5)  # the subscribe confirmation
        self.seen: set[int] = set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for message in self.pubsub.listen():
                if message["type"] == "message":
                    payload = transport_payload(
                        message["data"].split(b" ", 1)[1].decode()
                    )  # "<id> <message>"
                    self.seen.add(json.loads(payload["data_json"])["n"])
        except (redis.RedisError, OSError):
            return  # the promotion closes client connections: nothing after it is needed

    def close(self) -> None:
        try:
            self.pubsub.close()
            self.client.close()
        except redis.RedisError:
            pass


class PublishLoop:
    """Publish ``{"n": n}`` one after the other, sync and async in turn, until stopped."""

    def __init__(self, publisher: LastingPublisher) -> None:
        self.publisher = publisher
        self.results: list[dict] = []
        self.stopped = False
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        n = 0
        while not self.stopped:
            mode = ("sync", "async")[n % 2]
            started = time.monotonic()
            result = await asyncio.to_thread(self.publisher.publish, mode, n, "", 30)
            result["started"] = started
            self.results.append(result)
            n += 1
            await asyncio.sleep(0.02)

    def acked(self) -> list[dict]:
        return [r for r in self.results if r["ok"]]

    async def stop(self) -> None:
        self.stopped = True
        await asyncio.wait_for(self.task, 40)


@pytest.mark.timeout(180)
async def test_primary_killed_mid_stream_is_followed_by_publishers_servers_and_clients(
    server_factory, sentinel_setup
):
    setup = sentinel_setup
    env = sentinel_env(setup)
    nodes = [server_factory("daphne", env=env), server_factory("uvicorn", env=env)]
    readers: list[Reader] = []
    for node in nodes:
        for _ in range(2):
            ws = await connect(node.ws_url(f"/ws?channel={CHANNEL}"))
            await expect(ws, "subscribed")
            readers.append(Reader(ws))
    leaver_ws = await connect(nodes[0].ws_url(f"/ws?channel={CHANNEL}"))
    await expect(leaver_ws, "subscribed")
    leaver = Reader(leaver_ws)
    monitor = ReplicaMonitor(setup.replica_port)
    publisher = LastingPublisher(env, CHANNEL)
    loop = None
    try:
        loop = PublishLoop(publisher)
        await wait_until(lambda: all(len(r.ticks) >= 30 for r in readers), 30, "the stream to start")

        # A client leaves before the failover and comes back after it with its last id.
        await wait_until(lambda: len(leaver.ticks) >= 10, 10, "the leaver's messages")
        await leaver.close()
        left_at = leaver.ticks[-1][1]

        killed_at = time.monotonic()
        setup.kill_primary()
        await asyncio.to_thread(setup.wait_for_failover, 40)
        promoted_at = time.monotonic()

        def resumed() -> int:
            return sum(1 for r in loop.results if r["ok"] and r["started"] > promoted_at)

        await wait_until(lambda: resumed() >= 40, 40, "publishing to resume on the new primary")
        await loop.stop()

        results = loop.results
        refused = [r for r in results if not r["ok"]]
        acked_after_kill = [r for r in results if r["ok"] and r["started"] > killed_at]
        assert refused, "publishes during the failover should fail (TransportError), not wait"
        assert {r["mode"] for r in refused} == {"sync", "async"}
        assert all("Redis publish failed" in r["error"] for r in refused), refused[:3]
        slowest = max(r["elapsed"] for r in refused)
        assert slowest < 2.5, f"a refused publish took {slowest}s (socket timeout 2s): it should fail fast"
        assert {r["mode"] for r in acked_after_kill} == {"sync", "async"}, "both publishers resume"
        first_ok = min(r["started"] for r in acked_after_kill)

        acked = {r["n"] for r in loop.acked()}
        must = {n for n in acked if n in monitor.seen} | {r["n"] for r in acked_after_kill}
        lost = sorted(acked - must)
        await wait_until(
            lambda: all(must <= set(r.numbers) for r in readers),
            30,
            "every socket to have every acknowledged message that reached the new primary",
        )
        for reader in readers:
            numbers = reader.numbers
            assert len(numbers) == len(set(numbers)), "a message arrived twice"
            assert numbers == sorted(numbers), "messages arrived out of order"

        first_after = min(r["n"] for r in acked_after_kill)
        delivered_after = max(r.arrived[first_after] for r in readers) - killed_at

        # The new primary numbers the channel in a new epoch: a client that recovers across the
        # failover is told its position is gone (and reloads), then gets live messages again.
        new_epoch = readers[0].ticks[-1][1].rsplit(":", 1)[0]
        assert new_epoch != left_at.rsplit(":", 1)[0]
        ws = await connect(nodes[0].ws_url("/ws"))
        try:
            await expect(ws, "connected")
            await ws.send(json.dumps({"action": "subscribe", "channel": CHANNEL, "last_id": left_at}))
            assert (await recv(ws))["event"] == "subscribed"
            failed = await expect(ws, "recovery_failed")
            assert failed["data"]["code"] == 4290 and failed["data"]["current_id"].startswith(new_epoch)
            answer = await asyncio.to_thread(publisher.publish, "sync", 100_000)
            assert answer["ok"], answer
            tick = await expect(ws, "tick")
            assert tick["data"] == {"n": 100_000} and tick["id"].startswith(new_epoch)
        finally:
            await ws.close()

        print(
            f"\nSentinel failover: kill -> sentinels name the replica {promoted_at - killed_at:.2f}s, "
            f"kill -> first accepted publish {first_ok - killed_at:.2f}s, kill -> it reached every socket "
            f"{delivered_after:.2f}s; {len(refused)} publishes refused "
            f"(slowest {slowest * 1000:.0f} ms); {len(acked)} acknowledged, {len(lost)} of them lost with "
            f"the old primary {lost}; {len(must)} delivered to each of {len(readers)} sockets."
        )
    finally:
        if loop is not None and not loop.task.done():
            loop.stopped = True
            loop.task.cancel()
        publisher.close()
        monitor.close()
        for reader in readers:
            await reader.close()


async def _join(server, user: int, channel: str = "presence.chat.7"):
    ws = await connect(server.ws_url(f"/ws?channel={channel}&auth_token={make_token(user)}"))
    ack = await expect(ws, "subscribed")
    return ws, sorted(m["id"] for m in ack["data"]["members"])


@pytest.mark.timeout(150)
async def test_presence_and_node_stats_follow_the_failover(server_factory, sentinel_setup):
    setup = sentinel_setup
    env = {
        **sentinel_env(setup),
        "BROADCAST_PRESENCE_TTL": "3",
        "BROADCAST_STATS_INTERVAL": "0.5",
        "BROADCAST_STATS_TOKEN": STATS_TOKEN,
    }
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    sockets = []

    async def totals() -> dict:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(
                a.url("/api/broadcast/stats"), headers={"Authorization": f"Bearer {STATS_TOKEN}"}
            )
        document = response.json()
        return document.get("totals") or {}

    try:
        alice, members = await _join(a, 1)
        sockets.append(alice)
        bob, members = await _join(b, 2)
        sockets.append(bob)
        assert members == ["1", "2"]
        await expect(alice, "member_added")

        setup.kill_primary()
        await asyncio.to_thread(setup.wait_for_failover, 40)

        # A join after the failover sees the members of both nodes (kept in the new primary, or
        # written again by the heartbeats) and is announced across nodes through it.
        async def joined_with_everyone() -> bool:
            ws, members = await _join(a, 3)
            sockets.append(ws)
            return members == ["1", "2", "3"]

        await wait_until(joined_with_everyone, 20, "a join on the new primary to list both nodes' members")
        added = await expect(bob, "member_added", timeout=10)
        assert added["data"]["id"] == "3"

        # Node b's figures reach node a through the new primary: a socket opened on b after the
        # failover shows in a's cluster totals.
        before = (await totals()).get("connections", 0)
        dave = await connect(b.ws_url("/ws?channel=general"))
        sockets.append(dave)
        await expect(dave, "subscribed")
        await wait_until(
            lambda: _more_connections(totals, before), 20, "node b's report to reach node a's stats"
        )
    finally:
        for ws in sockets:
            await ws.close()


async def _more_connections(totals, before: int) -> bool:
    return (await totals()).get("connections", 0) > before


def test_the_sentinel_script_starts_a_new_epoch_on_a_primary_it_has_not_seen(redis_client, redis_prefix):
    """The script alone, on the shared Redis: a channel numbered by another primary starts over."""
    keys = RedisKeys(redis_prefix)
    offsets, history = keys.offsets("orders.1"), keys.history("orders.1")

    def publish(epoch: str) -> str:
        return redis_client.eval(
            SENTINEL_PUBLISH_SCRIPT,
            2,
            offsets,
            history,
            keys.pubsub("orders.1"),
            '{"n":1}',
            "10",
            "60000",
            epoch,
        )

    assert [publish("first"), publish("unused")] == ["first:1", "first:2"]
    primary = redis_client.info("replication")["master_replid"]
    assert redis_client.hget(offsets, "r") == primary
    # As if the hash had been replicated from a primary that has since died.
    redis_client.hset(offsets, "r", "0" * 40)
    assert publish("second") == "second:1"
    assert redis_client.xlen(history) == 1 and redis_client.hget(offsets, "r") == primary
    assert publish("unused") == "second:2"
