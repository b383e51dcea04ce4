"""The ``redis`` backend on a real Redis Cluster (3 primaries, ``redis-cli --cluster create``).

Two server processes (uvicorn and daphne) and a publisher process, all configured with
``BROADCAST_REDIS_CLUSTER_NODES``: every message reaches every subscriber exactly once, each
broadcast is one ``SPUBLISH`` on the one shard that owns its channel (counted by each node's
``INFO commandstats``); presence and stats span the cluster; a channel whose slot moves to
another primary while messages flow keeps receiving all of them; and (with replicas) a primary
failover inside the cluster is survived.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil

import pytest

from django_broadcasting.backends.redis.cluster import key_slot
from django_broadcasting.server.cluster import acluster_stats
from tests.docs_blocks import python_blocks, run_blocks
from tests.integration.cluster_support import LocalCluster
from tests.integration.redis_support import parse_results, run_publisher, start_publisher, wait_until
from tests.integration.wsclient import connect, expect, make_token

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFIX = "clt:"


def _require_tools() -> None:
    missing = [t for t in ("redis-server", "redis-cli") if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(f"{', '.join(missing)} required under CI=true", pytrace=False)
        pytest.skip(f"{', '.join(missing)} not installed")


@pytest.fixture(scope="module")
def cluster():
    _require_tools()
    with LocalCluster(primaries=3) as running:
        yield running


def cluster_env(cluster: LocalCluster, **extra) -> dict[str, str]:
    env = {
        "BROADCAST_DRIVER": "redis",
        "BROADCAST_REDIS_CLUSTER_NODES": cluster.seeds,
        "BROADCAST_CHANNELS_PREFIX": PREFIX,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def shard_channel(channel: str) -> str:
    return f"{PREFIX}{{{channel}}}"


class Inbox:
    """Record the ``n`` of every ``tick`` frame per socket, in the background."""

    def __init__(self, sockets):
        self.sockets = sockets
        self.got: list[list[int]] = [[] for _ in sockets]
        self.events: list[list[str]] = [[] for _ in sockets]
        self.tasks = [asyncio.ensure_future(self._read(i, ws)) for i, ws in enumerate(sockets)]

    async def _read(self, index, ws):
        while True:
            frame = json.loads(await ws.recv())
            self.events[index].append(frame.get("event"))
            if frame.get("event") == "tick":
                self.got[index].append(frame["data"]["n"])

    def complete(self, expected: list[int]) -> bool:
        return all(set(expected) <= set(g) for g in self.got)

    async def close(self):
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def subscribe_many(servers, channel: str, per_server: int) -> list:
    sockets = []
    for server in servers:
        for _ in range(per_server):
            ws = await connect(server.ws_url(f"/ws?channel={channel}"), max_queue=None)
            await expect(ws, "subscribed", timeout=30)
            sockets.append(ws)
    return sockets


def channels_on_distinct_shards(cluster: LocalCluster, count: int) -> list[str]:
    """Channel names whose slots belong to ``count`` different primaries."""
    found: dict[int, str] = {}
    for i in range(1000):
        name = f"orders.{i}"
        found.setdefault(cluster.owner(shard_channel(name)), name)
        if len(found) == count:
            return list(found.values())
    raise AssertionError("could not spread channels over the shards")


async def test_one_spublish_per_broadcast_on_one_shard_exactly_once(server_factory, cluster):
    env = cluster_env(cluster)
    servers = [server_factory("uvicorn", env=env), server_factory("daphne", env=env)]
    first, second = channels_on_distinct_shards(cluster, 2)
    broadcasts = 20
    for channel in (first, second):
        sockets = await subscribe_many(servers, channel, 5)
        inbox = Inbox(sockets)
        try:
            owner = cluster.owner(shard_channel(channel))
            cluster.reset_stats()
            results = await asyncio.to_thread(run_publisher, env, channel, broadcasts)
            assert [r.get("error") for r in results] == [None] * broadcasts, results
            expected = list(range(broadcasts))
            await wait_until(
                lambda inbox=inbox, expected=expected: inbox.complete(expected),
                30,
                f"every socket to get every broadcast on {channel}",
            )
            await asyncio.sleep(0.3)  # a negative check: duplicates, if any, have time to arrive
            assert inbox.got == [expected] * len(sockets)  # exactly once each, in order
            stats = {port: cluster.commandstats(port) for port in cluster.primaries_now()}
            spublish = {port: s.get("spublish", 0) for port, s in stats.items()}
            assert spublish == {port: (broadcasts if port == owner else 0) for port in stats}, spublish
            assert all(s.get("publish", 0) == 0 for s in stats.values()), stats  # no classic PUBLISH
            # The owner ran one EVALSHA per broadcast (history + SPUBLISH), plus heartbeats at most.
            assert broadcasts <= stats[owner].get("evalsha", 0) <= broadcasts + 10, stats[owner]
        finally:
            await inbox.close()


async def test_history_keys_share_the_channel_slot(cluster):
    from redis.cluster import RedisCluster

    env = cluster_env(cluster)
    await asyncio.to_thread(run_publisher, env, "placed.1", 3)
    client = RedisCluster(host="127.0.0.1", port=cluster.ports[0])
    try:
        keys = sorted(
            k.decode() for k in client.keys(f"{PREFIX}bc:{{placed.1}}:*", target_nodes=RedisCluster.ALL_NODES)
        )
        assert keys == [f"{PREFIX}bc:{{placed.1}}:history", f"{PREFIX}bc:{{placed.1}}:offset"]
        slots = {key_slot(k) for k in [*keys, shard_channel("placed.1")]}
        assert slots == {key_slot("placed.1")}
        assert client.xlen(keys[0]) == 3
    finally:
        client.close()


async def test_presence_and_stats_span_the_cluster(server_factory, cluster, settings):
    env = cluster_env(cluster, BROADCAST_PRESENCE_TTL=3, BROADCAST_STATS_INTERVAL=0.3)
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    channel = "presence.chat.7"
    sockets = []
    try:
        alice = await connect(a.ws_url(f"/ws?channel={channel}&auth_token={make_token(1)}"))
        ack = await expect(alice, "subscribed")
        assert [m["id"] for m in ack["data"]["members"]] == ["1"]
        bob = await connect(b.ws_url(f"/ws?channel={channel}&auth_token={make_token(2)}"))
        sockets += [alice, bob]
        ack = await expect(bob, "subscribed")
        assert sorted(m["id"] for m in ack["data"]["members"]) == ["1", "2"]
        added = await expect(alice, "member_added")
        assert added["data"]["id"] == "2"
        await bob.close()
        removed = await expect(alice, "member_removed")
        assert removed["data"]["id"] == "2"

        # Any process reads every node's report (settings given as a list this time).
        settings.BROADCASTING = {
            "DEFAULT_DRIVER": "redis",
            "REDIS_CLUSTER_NODES": [f"127.0.0.1:{p}" for p in cluster.ports],
            "CHANNELS_PREFIX": PREFIX,
        }

        async def both_nodes_report() -> bool:
            report = await acluster_stats()
            return report["node_count"] == 2 and report["totals"]["connections"] == 1

        await wait_until(both_nodes_report, 20, "both nodes in the cluster stats")
        report = await acluster_stats()
        assert sorted(n["pid"] for n in report["nodes"]) == sorted([a.pid, b.pid])
        assert {n["transport"] for n in report["nodes"]} == {"ClusterTransport"}
    finally:
        for ws in sockets:
            await ws.close()


async def test_delivery_continues_while_the_channel_slot_moves(server_factory, cluster):
    env = cluster_env(cluster)
    servers = [server_factory("uvicorn", env=env), server_factory("daphne", env=env)]
    channel = "reshard.1"
    sockets = await subscribe_many(servers, channel, 3)
    inbox = Inbox(sockets)
    broadcasts = 120
    publisher = start_publisher(env, channel, broadcasts, interval=0.02)
    try:
        await wait_until(lambda: min(len(g) for g in inbox.got) >= 20, 30, "the first broadcasts")
        slot = key_slot(channel)
        source = cluster.owner(shard_channel(channel))
        target = next(p for p in cluster.primaries_now() if p != source)
        await asyncio.to_thread(cluster.move_slot, slot, target)
        assert cluster.owner(shard_channel(channel)) == target
        stdout, stderr = await asyncio.to_thread(publisher.communicate, timeout=90)
        assert publisher.returncode == 0, stderr
        results = parse_results(stdout)
        acknowledged = [r["n"] for r in results if r.get("id")]
        assert len(acknowledged) >= broadcasts - 5, results  # a redirect is followed, not failed
        await wait_until(
            lambda: inbox.complete(acknowledged), 30, "every acknowledged broadcast after the move"
        )
        await asyncio.sleep(0.3)
        for got in inbox.got:
            assert len(got) == len(set(got)), "a broadcast arrived twice"
            assert got == sorted(got), "out of order"
        # The servers now listen at the new owner: a broadcast after the move arrives live there.
        cluster.reset_stats()
        await asyncio.to_thread(run_publisher, env, channel, 1, event="late")
        await wait_until(lambda: all("late" in e for e in inbox.events), 10, "a broadcast after the move")
        assert cluster.commandstats(target).get("spublish", 0) == 1
        assert cluster.commandstats(source).get("spublish", 0) == 0
        for server in servers:  # each server moved its subscription (and caught up from history)
            assert f"resubscribed 1 channel(s) on 127.0.0.1:{target}" in server.log_text()
    finally:
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait(10)
        await inbox.close()


@pytest.fixture
def cluster_with_replicas():
    _require_tools()
    with LocalCluster(primaries=3, replicas=1) as running:
        yield running


@pytest.mark.parametrize("how", ["cluster-failover", "kill-primary"])
async def test_delivery_resumes_after_a_primary_failover(server_factory, cluster_with_replicas, how):
    cluster = cluster_with_replicas
    # 50 broadcasts a second: the history must outlast the election (and a loaded machine's delays),
    # since what is published meanwhile is read back from it.
    env = cluster_env(cluster, BROADCAST_HISTORY_SIZE="2000")
    servers = [server_factory("uvicorn", env=env), server_factory("daphne", env=env)]
    channel = "failover.1"
    sockets = await subscribe_many(servers, channel, 3)
    inbox = Inbox(sockets)
    broadcasts = 250
    publisher = start_publisher(env, channel, broadcasts, interval=0.02)
    try:
        await wait_until(lambda: min(len(g) for g in inbox.got) >= 20, 30, "the first broadcasts")
        old = cluster.owner(shard_channel(channel))
        replica = cluster.replica_of(old)

        def failover() -> None:
            if how == "kill-primary":  # SIGKILL: the replica is promoted after the node timeout
                cluster.kill(old)
            else:  # a coordinated hand-over, as for maintenance
                cluster.call(replica, "CLUSTER", "FAILOVER")
            cluster.wait_ok(30)

        await asyncio.to_thread(failover)
        await wait_until(
            lambda: cluster.owner(shard_channel(channel)) == replica, 30, "the replica to take over"
        )
        stdout, stderr = await asyncio.to_thread(publisher.communicate, timeout=90)
        assert publisher.returncode == 0, stderr
        results = parse_results(stdout)
        acknowledged = [r["n"] for r in results if r.get("id")]
        assert acknowledged and acknowledged[-1] == broadcasts - 1, results  # publishing resumed
        await wait_until(
            lambda: inbox.complete(acknowledged), 30, "every acknowledged broadcast after the failover"
        )
        await asyncio.sleep(0.3)
        for got in inbox.got:
            assert len(got) == len(set(got)), "a broadcast arrived twice"
            assert got == sorted(got), "out of order"
        cluster.reset_stats()
        await asyncio.to_thread(run_publisher, env, channel, 1, event="late")
        await wait_until(lambda: all("late" in e for e in inbox.events), 10, "a broadcast after the failover")
        assert cluster.commandstats(replica).get("spublish", 0) == 1
        for server in servers:
            assert f"resubscribed 1 channel(s) on 127.0.0.1:{replica}" in server.log_text()
    finally:
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait(10)
        await inbox.close()


def test_doctor_pings_the_cluster(cluster):
    from tests.servers import run_manage

    out = run_manage("broadcast", "doctor", "--connect", env=cluster_env(cluster))
    assert "Redis Cluster" in out and "cluster_state:ok" in out, out


async def test_members_of_a_killed_server_are_reaped(server_factory, cluster):
    ttl = 2.0
    env = cluster_env(cluster, BROADCAST_PRESENCE_TTL=ttl)
    doomed, survivor = server_factory("uvicorn", env=env), server_factory("uvicorn", env=env)
    channel = "presence.chat.reap"
    sockets = []
    try:
        for user in (1, 3):
            ws = await connect(doomed.ws_url(f"/ws?channel={channel}&auth_token={make_token(user)}"))
            await expect(ws, "subscribed")
            sockets.append(ws)
        watcher = await connect(survivor.ws_url(f"/ws?channel={channel}&auth_token={make_token(2)}"))
        sockets.append(watcher)
        ack = await expect(watcher, "subscribed")
        assert sorted(m["id"] for m in ack["data"]["members"]) == ["1", "2", "3"]
        doomed.kill()  # SIGKILL: no goodbye; the survivor's heartbeat reaps it
        gone = set()
        while gone != {"1", "3"}:
            frame = await expect(watcher, "member_removed", timeout=ttl + 3)
            gone.add(frame["data"]["id"])
        again = await connect(survivor.ws_url(f"/ws?channel={channel}&auth_token={make_token(4)}"))
        sockets.append(again)
        ack = await expect(again, "subscribed")
        assert sorted(m["id"] for m in ack["data"]["members"]) == ["2", "4"]
    finally:
        for ws in sockets:
            await ws.close()


async def test_admin_closes_a_users_sockets_across_the_cluster(server_factory, cluster, settings):
    env = cluster_env(cluster)
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    sockets = []
    for server in (a, b):
        ws = await connect(server.ws_url(f"/ws?channel=private-user.9&auth_token={make_token(9)}"))
        await expect(ws, "subscribed")
        sockets.append(ws)
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "redis",
        "REDIS_CLUSTER_NODES": cluster.seeds,
        "CHANNELS_PREFIX": PREFIX,
    }
    from django_broadcasting.drivers import get_driver

    backend = get_driver()
    console = await backend.aconsole()  # opens the console: the servers start recording
    assert isinstance(console["events"], list)
    # Questions every server answers at once (the control channel, sharded on a cluster).
    await wait_until(
        lambda: backend.achannel_counts(), 10, "the servers' control links"
    )  # fmt: skip
    assert await backend.achannel_counts() == {"user.9": 2}
    member = await connect(a.ws_url(f"/ws?channel=presence.chat.admin&auth_token={make_token(9)}"))
    await expect(member, "subscribed")
    assert [m["id"] for m in await backend.apresence_members("presence.chat.admin")] == ["9"]
    sockets.append(member)
    assert (await backend.aterminate_user("9"))["closed"] == 3
    for ws in sockets:
        await asyncio.wait_for(ws.wait_closed(), 10)  # each server closes its socket within a second or so

    async def both_recording() -> bool:
        return len((await backend.aconsole())["nodes"]) == 2

    await wait_until(both_recording, 10, "both servers recording for the console", 0.3)
    await backend.aclose()


def test_the_scaling_page_cluster_example_runs(cluster, settings, capsys):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "scaling.md").read_text()
    section = text.split("### Redis Cluster", 1)[1].split("\n### ", 1)[0]
    blocks = [b for b in python_blocks("scaling.md", lang="py", text=section) if "get_driver" in b]
    assert blocks
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "redis",
        "REDIS_CLUSTER_NODES": cluster.seeds,
        "CHANNELS_PREFIX": PREFIX,
    }
    run_blocks("scaling.md", blocks=blocks, namespace={})
    out = capsys.readouterr().out
    assert f"2 message(s) accepted by Redis Cluster at {cluster.seeds}" in out, out
    assert re.search(r"\['[0-9a-f]+:\d+', '[0-9a-f]+:\d+'\]", out), out


async def test_webhooks_occupancy_and_client_events_across_the_cluster(server_factory, cluster):
    from tests.integration.pusher_client import PusherSocket, send
    from tests.integration.pusher_client import expect as pusher_expect
    from tests.integration.test_webhooks import hook_env, wait_events
    from tests.integration.webhook_receiver import WebhookReceiver

    with WebhookReceiver() as hooks:
        env = {**cluster_env(cluster), **hook_env(hooks.url)}
        a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
        async with PusherSocket(a) as on_a, PusherSocket(b) as on_b:
            await on_a.subscribe("orders")
            await on_b.subscribe("orders")  # the second node: no second channel_occupied
            await on_a.join("presence-room.1", "1")
            await on_b.join("presence-room.1", "2")
            await pusher_expect(on_a.ws, "pusher_internal:member_added")
            # A client event has no history: a plain SPUBLISH on the channel's shard.
            await send(on_b.ws, "client-hi", {"from": "b"}, channel="presence-room.1")
            await pusher_expect(on_a.ws, "client-hi")
            await on_b.ws.close()
            await wait_events(hooks, lambda ev: hooks.named("member_removed"), 5, "member_removed")
            await on_a.ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": "orders"}}))
            await wait_events(
                hooks, lambda ev: hooks.named("channel_vacated", "orders"), 10, "orders vacated"
            )
        await asyncio.sleep(1.0)  # a negative check: no duplicate arrives from the other node meanwhile
        events = hooks.events()

    def count(name: str, channel: str) -> int:
        return sum(1 for e in events if e["name"] == name and e["channel"] == channel)

    assert count("channel_occupied", "orders") == 1
    assert count("channel_vacated", "orders") == 1
    assert count("channel_occupied", "presence-room.1") == 1
    assert sorted(e["user_id"] for e in hooks.named("member_added")) == ["1", "2"]
    assert hooks.named("client_event")
