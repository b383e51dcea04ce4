"""Cluster-wide presence through Redis: one member list on every node, events across nodes, dead nodes reaped."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.redis_support import redis_env, wait_until
from tests.integration.wsclient import connect, expect, make_token, nothing

pytestmark = pytest.mark.integration

CHANNEL = "presence.chat.42"
TTL = 3.0


async def join(server, user: int, channel: str = CHANNEL):
    ws = await connect(server.ws_url(f"/ws?channel={channel}&auth_token={make_token(user)}"))
    ack = await expect(ws, "subscribed")
    return ws, ack


def ids(members) -> list[str]:
    return sorted(m["id"] for m in members)


async def test_presence_is_cluster_wide(server_factory, redis_url, redis_prefix):
    env = redis_env(redis_url, redis_prefix, BROADCAST_PRESENCE_TTL=TTL)
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    sockets = []
    try:
        alice, ack = await join(a, 1)
        sockets.append(alice)
        assert ids(ack["data"]["members"]) == ["1"]
        bob, ack = await join(b, 2)
        sockets.append(bob)
        assert ids(ack["data"]["members"]) == ["1", "2"]
        added = await expect(alice, "member_added")
        assert added["data"]["id"] == "2" and added["channel"] == CHANNEL

        # A second tab of a user already present, on the other node: still one member, no event.
        alice_tab, ack = await join(b, 1)
        sockets.append(alice_tab)
        assert ids(ack["data"]["members"]) == ["1", "2"]
        await nothing(bob, 0.5)

        # Every node shows the same list.
        carol, ack_a = await join(a, 3)
        dave, ack_b = await join(b, 4)
        sockets += [carol, dave]
        assert ids(ack_b["data"]["members"]) == ["1", "2", "3", "4"]
        assert ids(ack_a["data"]["members"]) == ["1", "2", "3"]

        # Leaving one tab keeps the member; leaving the last one removes it everywhere.
        await alice_tab.close()
        await bob.close()
        removed = await expect(alice, "member_removed")
        assert removed["data"]["id"] == "2"
        late, ack = await join(a, 5)
        sockets.append(late)
        assert ids(ack["data"]["members"]) == ["1", "3", "4", "5"]
    finally:
        for ws in sockets:
            await ws.close()


async def test_members_of_a_killed_node_leave_within_the_ttl(
    server_factory, redis_url, redis_prefix, redis_client
):
    env = redis_env(redis_url, redis_prefix, BROADCAST_PRESENCE_TTL=TTL)
    doomed, survivor = server_factory("uvicorn", env=env), server_factory("uvicorn", env=env)
    sockets = []
    try:
        for user in (1, 3):
            ws, _ = await join(doomed, user)
            sockets.append(ws)
        both, _ = await join(doomed, 5)
        sockets.append(both)
        watcher, _ = await join(survivor, 2)
        also, ack = await join(survivor, 5)  # user 5 is on both nodes
        sockets += [watcher, also]
        assert ids(ack["data"]["members"]) == ["1", "2", "3", "5"]

        doomed.kill()  # SIGKILL: no close frames, no goodbye to Redis
        killed_at = time.monotonic()
        gone = set()
        while gone != {"1", "3"}:
            frame = await expect(watcher, "member_removed", timeout=TTL + 2)
            gone.add(frame["data"]["id"])
        elapsed = time.monotonic() - killed_at
        assert elapsed <= TTL + 0.5, f"members left {elapsed:.1f}s after the kill (TTL {TTL}s)"
        await nothing(watcher, 0.5)  # user 5 is still connected through the survivor

        fresh, ack = await join(survivor, 6)
        sockets.append(fresh)
        assert ids(ack["data"]["members"]) == ["2", "5", "6"]
        # Nothing of the dead node is left in Redis but its ghost-free bookkeeping.
        await wait_until(
            lambda: not list(redis_client.scan_iter(f"{redis_prefix}bc:node:*{doomed.pid}*")),
            5,
            "the dead node's keys to go",
        )
    finally:
        for ws in sockets:
            try:
                await ws.close()
            except Exception:
                pass


async def test_whispers_and_member_events_cross_nodes_once(server_factory, redis_url, redis_prefix):
    env = redis_env(redis_url, redis_prefix, BROADCAST_PRESENCE_TTL=TTL)
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    alice, _ = await join(a, 1)
    bob, _ = await join(b, 2)
    try:
        await expect(alice, "member_added")
        await alice.send(
            json.dumps({"action": "whisper", "channel": CHANNEL, "event": "typing", "data": {"on": True}})
        )
        whisper = await expect(bob, "client-typing")
        assert whisper["data"] == {"on": True} and whisper["user_id"] == "1"
        await nothing(alice, 0.5)  # the sender does not hear its own whisper
        await nothing(bob, 0.3)  # and the other node hears it once
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
async def test_members_of_a_node_shut_down_normally_leave_at_once(
    server_factory, redis_url, redis_prefix, kind
):
    env = redis_env(redis_url, redis_prefix)  # the default PRESENCE_TTL (30 s) is not waited for
    leaving, staying = server_factory(kind, env=env), server_factory("uvicorn", env=env)
    gone, _ = await join(leaving, 1)
    watcher, ack = await join(staying, 2)
    try:
        assert ids(ack["data"]["members"]) == ["1", "2"]
        leaving.stop()  # SIGTERM
        removed = await expect(watcher, "member_removed", timeout=10)
        assert removed["data"]["id"] == "1"
    finally:
        await watcher.close()
        await gone.close()
