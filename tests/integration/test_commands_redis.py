"""``manage.py broadcast`` with Redis: two real daphne nodes and the command in a third process.

With ``BROADCAST_DRIVER=redis`` the publishing subcommands go through Redis (no server address
needed) and ``stats`` / ``channels`` / ``monitor`` read every node's report from Redis. The
``websocket`` driver over channels-redis is covered too. Redis down is one clear line.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

import httpx
import pytest

from django_broadcasting.http.trigger import sign
from tests.integration.test_commands import abroadcast, broadcast, ok, one_line_error
from tests.integration.wsclient import connect, expect, make_token, subscribe
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.redis]


@pytest.fixture
def redis_env(redis_url, redis_prefix) -> dict[str, str]:
    """Settings every process of the test shares: the redis driver under a unique prefix."""
    return {
        "BROADCAST_DRIVER": "redis",
        "BROADCAST_REDIS_URL": redis_url,
        "BROADCAST_CHANNELS_PREFIX": redis_prefix,
        "BROADCAST_STATS_INTERVAL": "0.2",  # nodes report often, so the test waits little
    }


@pytest.fixture
def nodes(server_factory, redis_env):
    return server_factory("daphne", env=redis_env), server_factory("daphne", env=redis_env)


async def wait_stats(env: dict[str, str], predicate, timeout: float = 20) -> dict:
    """Poll ``stats --json`` until ``predicate(document)``; the last document on timeout."""
    deadline = time.monotonic() + timeout
    document: dict = {}
    while time.monotonic() < deadline:
        result = await abroadcast("stats", "--json", env=env)
        if result.returncode == 0:
            document = json.loads(result.stdout)
            if predicate(document):
                return document
        await asyncio.sleep(0.2)
    raise AssertionError(f"stats never matched; last: {document or result.stderr}")


async def test_test_and_ping_reach_subscribers_on_every_node(nodes, redis_env):
    a, b = nodes
    async with (
        await connect(a.ws_url("/ws?channel=general")) as wa,
        await connect(b.ws_url("/ws?channel=general")) as wb,
    ):
        await expect(wa, "subscribed")
        await expect(wb, "subscribed")
        out = ok(await abroadcast("test", "--message", "via redis", env=redis_env))
        url = urlsplit(redis_env["BROADCAST_REDIS_URL"])
        where = f"{url.hostname}:{url.port or 6379}/{url.path.strip('/') or 0}"
        assert f"  • Accepted by Redis at {where}" in out.splitlines(), out
        for ws in (wa, wb):
            assert (await expect(ws, "test"))["data"]["message"] == "via redis"
        ok(await abroadcast("ping", "--count", "2", "--interval", "0.2", env=redis_env))
        for ws in (wa, wb):
            assert [(await expect(ws, "ping"))["data"]["sequence"] for _ in range(2)] == [1, 2]


async def test_notify_user_and_system_alert_through_redis(nodes, redis_env):
    a, b = nodes
    async with (
        await connect(a.ws_url(f"/ws?auth_token={make_token(77)}")) as user,
        await connect(b.ws_url(f"/ws?auth_token={make_token(1, roles=['admin'])}")) as admin,
    ):
        await expect(user, "connected")
        await expect(admin, "connected")
        assert (await subscribe(user, "user.77"))["event"] == "subscribed"
        assert (await subscribe(admin, "admin"))["event"] == "subscribed"
        ok(await abroadcast("notify:user", "77", "Hello", "From the CLI", env=redis_env))
        ok(await abroadcast("system:alert", "critical", "Disk full", env=redis_env))
        note = await expect(user, "notification")
        alert = await expect(admin, "system_alert")
    assert (note["channel"], note["data"]["title"], note["data"]["message"]) == (
        "user.77",
        "Hello",
        "From the CLI",
    )
    assert (alert["data"]["level"], alert["data"]["action_required"]) == ("critical", False)


async def test_stats_channels_and_monitor_cover_every_node(nodes, redis_env):
    a, b = nodes
    async with (
        await connect(a.ws_url("/ws?channel=general")) as w1,
        await connect(b.ws_url("/ws?channel=general")) as w2,
        await connect(b.ws_url("/ws?channel=announcements")) as w3,
    ):
        for ws in (w1, w2, w3):
            await expect(ws, "subscribed")
        document = await wait_stats(
            redis_env,
            lambda d: len(d["nodes"]) == 2 and d["channels"] == {"general": 2, "announcements": 1},
        )
        assert document["connections"] == 3 and document["totals"]["nodes"] == 2
        out = ok(await abroadcast("stats", env=redis_env))
        assert "  • general: 2 connections" in out and "  • Total Active Channels: 2" in out
        assert "🖥️  Nodes: 2" in out
        channels = ok(await abroadcast("channels", env=redis_env))
        assert channels.splitlines() == [
            "📡 Active Channels: 2",
            "  • announcements: 1 connections",
            "  • general: 2 connections",
        ]
        monitor = ok(await abroadcast("monitor", "--duration", "1", "--interval", "0.5", env=redis_env))
        ticks = [line for line in monitor.splitlines() if line.startswith("[")]
        assert ticks and all("connections=3" in t and "nodes=2" in t for t in ticks), monitor
        # A node's own stats API shows the other node too.
        async with httpx.AsyncClient() as client:
            api = (await client.get(a.url("/api/broadcast/stats"), headers=sign(b""))).json()
        assert {n["node"] for n in api["nodes"]} == {n["node"] for n in document["nodes"]}
        assert api["channels"]["general"] == 2


def test_redis_down_is_one_clear_line(redis_env):
    env = {**redis_env, "BROADCAST_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    for args in (["test"], ["stats"], ["channels"], ["monitor", "--duration", "1"],
                 ["notify:user", "1", "T", "M"], ["system:alert", "info", "x"], ["ping", "--count", "1"]):  # fmt: skip
        line = one_line_error(broadcast(*args, env=env))
        assert "Redis" in line or "redis" in line, line


def test_no_server_reporting_is_one_clear_line(redis_env):
    line = one_line_error(broadcast("stats", env=redis_env))
    assert "No broadcast server has reported to Redis" in line


async def test_websocket_driver_over_channels_redis(server_factory, redis_prefix):
    env = {"BROADCAST_CHANNEL_LAYER": "redis", "BROADCAST_CHANNEL_LAYER_PREFIX": redis_prefix.rstrip(":")}
    a = server_factory("daphne", env=env)
    b = server_factory("daphne", env=env)
    async with (
        await connect(a.ws_url("/ws?channel=general")) as wa,
        await connect(b.ws_url("/ws?channel=general")) as wb,
    ):
        await expect(wa, "subscribed")
        await expect(wb, "subscribed")
        # No server address given: the command publishes through the Redis channel layer.
        no_server = {**env, "BROADCAST_WEBSOCKET_PORT": str(free_port())}
        out = ok(await abroadcast("test", "--message", "layer", env=no_server))
        assert "  • Accepted by the channel layer 'default' (RedisChannelLayer at " in out, out
        ok(await abroadcast("system:alert", "info", "layer alert", "--channel", "general", env=no_server))
        for ws in (wa, wb):
            assert (await expect(ws, "test"))["data"]["message"] == "layer"
            assert (await expect(ws, "system_alert"))["data"]["message"] == "layer alert"
        # Stats come from the server's API (the layer keeps no node reports).
        out = ok(await abroadcast("channels", env={**env, "BROADCAST_WEBSOCKET_PORT": str(a.port)}))
        assert "  • general: 1 connections" in out
