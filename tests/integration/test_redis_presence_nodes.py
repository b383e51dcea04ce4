"""RedisPresence in-process against a real Redis: one member per user across nodes, reaping, outages."""

from __future__ import annotations

import asyncio

import pytest

from django_broadcasting.backends.redis.presence import RedisPresence
from django_broadcasting.drivers.redis import RedisDriver
from django_broadcasting.server.cluster import totals

pytestmark = pytest.mark.redis


class FakeHub:
    """What RedisPresence uses of a hub: a node id, stats, and somewhere to relay events."""

    def __init__(self, node: str) -> None:
        self.node_id = node
        self.relayed: list = []
        self.announced: list = []

    def stats(self) -> dict:
        return {"node": self.node_id, "connections": 1}

    async def relay(self, messages) -> None:
        self.relayed.extend(messages)

    async def announce(self, channel, event, data, socket_id) -> None:
        self.announced.append((channel, event, data))


def quiet(*stores: RedisPresence) -> None:
    """Stop the background heartbeats, so the test drives ``beat()`` itself."""
    for store in stores:
        store._task.cancel()


async def started(presence):
    await presence.start()
    return presence


@pytest.fixture
def driver(redis_url, redis_prefix, settings):
    settings.BROADCASTING = {"REDIS_URL": redis_url, "CHANNELS_PREFIX": redis_prefix, "PRESENCE_TTL": 2}
    return RedisDriver("redis")


async def test_a_user_is_one_member_across_nodes_and_tabs(driver):
    a, b = (
        await started(RedisPresence(driver, FakeHub("node-a"))),
        await started(RedisPresence(driver, FakeHub("node-b"))),
    )
    try:
        assert await a.join("presence.room", "1", {"name": "Ann"}, "s1") is True
        assert await a.join("presence.room", "1", {"name": "Ann"}, "s2") is False  # second tab
        assert await b.join("presence.room", "1", {"name": "Ann"}, "s3") is False  # other node
        assert await b.join("presence.room", "2", {"name": "Bob"}, "s4") is True
        assert (
            await a.members("presence.room")
            == await b.members("presence.room")
            == [
                {"id": "1", "info": {"name": "Ann"}},
                {"id": "2", "info": {"name": "Bob"}},
            ]
        )
        assert await a.leave("presence.room", "1", "s1") is False  # s2 remains on node a
        assert await a.leave("presence.room", "1", "s2") is False  # node b still holds user 1
        assert await b.leave("presence.room", "1", "s3") is True  # the last socket anywhere
        assert [m["id"] for m in await a.members("presence.room")] == ["2"]
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_dead_node_is_reaped_by_another(driver):
    doomed, survivor = (
        await started(RedisPresence(driver, FakeHub("doomed"))),
        await started(RedisPresence(driver, FakeHub("survivor"))),
    )
    quiet(doomed, survivor)
    try:
        await doomed.join("presence.room", "7", {}, "s1")
        await doomed.join("presence.room", "8", {}, "s2")
        await survivor.join("presence.room", "8", {}, "s3")
        # It stops heart-beating, as after kill -9.
        async with driver.session() as client:  # expire it now rather than waiting out the TTL
            await client.zadd(driver.keys.nodes, {"doomed": 1})
        await survivor.beat()
        relayed = [(m.channel, m.event, m.data) for m in survivor.hub.relayed]
        assert relayed == [("presence.room", "member_removed", {"id": "7"})]  # 8 is still on survivor
        assert [m["id"] for m in await survivor.members("presence.room")] == ["8"]
        # A reaped node that was only stalled registers its members again, and says so.
        await doomed.beat()
        assert ("presence.room", "member_added", {"id": "7", "info": {}}) in doomed.hub.announced
        assert [m["id"] for m in await survivor.members("presence.room")] == ["7", "8"]
    finally:
        await doomed.aclose()
        await survivor.aclose()


async def test_a_leave_during_an_outage_is_recorded_later(driver, monkeypatch):
    a, b = (
        await started(RedisPresence(driver, FakeHub("node-a"))),
        await started(RedisPresence(driver, FakeHub("node-b"))),
    )
    quiet(a, b)
    try:
        await a.join("presence.room", "3", {}, "s1")
        real = a._call

        async def down(name, *args):
            if name == "leave":
                raise ConnectionError("Redis is down")
            return await real(name, *args)

        monkeypatch.setattr(a, "_call", down)
        assert await a.leave("presence.room", "3", "s1") is True  # announced locally
        assert [m["id"] for m in await b.members("presence.room")] == ["3"]  # Redis missed it
        monkeypatch.setattr(a, "_call", real)
        await a.beat()
        assert await b.members("presence.room") == []
        assert ("presence.room", "member_removed", {"id": "3"}) in a.hub.announced
    finally:
        await a.aclose()
        await b.aclose()


async def test_graceful_close_leaves_at_once(driver):
    a, b = (
        await started(RedisPresence(driver, FakeHub("node-a"))),
        await started(RedisPresence(driver, FakeHub("node-b"))),
    )
    quiet(b)
    await a.join("presence.room", "4", {}, "s1")
    await a.aclose()
    try:
        assert await b.members("presence.room") == []
        assert [(m.event, m.data) for m in a.hub.relayed] == [("member_removed", {"id": "4"})]
    finally:
        await b.aclose()


def test_totals_add_up_nodes():
    nodes = [
        {"node": "a", "connections": 2, "deliveries": 10, "channels": {"general": 2}, "errors": {4030: 1}},
        {
            "node": "b",
            "connections": 1,
            "deliveries": 5,
            "channels": {"general": 1, "x": 1},
            "errors": {"4030": 2},
        },
    ]
    out = totals(nodes)
    assert out["connections"] == 3 and out["deliveries"] == 15
    assert out["channels"] == {"general": 3, "x": 1} and out["subscriptions"] == 4
    assert out["errors"] == {"4030": 3}


async def test_presence_heartbeat_survives_being_cancelled_quickly(driver):
    presence = await started(RedisPresence(driver, FakeHub("quick")))
    await asyncio.sleep(0)
    await presence.aclose()
