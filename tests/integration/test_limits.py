"""Connection limits, liveness, origin policy and shutdown, each on its own configured server."""

from __future__ import annotations

import json
import signal

import pytest
import websockets

from tests.integration.wsclient import closed_with, connect, expect, make_token, recv, subscribe

pytestmark = pytest.mark.integration

KINDS = ["daphne", "uvicorn", "uvicorn-front"]


async def test_origin_policy(server_factory):
    server = server_factory("daphne", env={"CORS_ALLOWED_ORIGINS": "http://good.example.com"})
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server.ws_url("/ws"), origin="http://evil.example.com")
    assert info.value.response.status_code == 403
    async with await connect(server.ws_url("/ws"), origin="http://good.example.com") as ws:
        assert (await recv(ws))["event"] == "connected"
    async with await connect(server.ws_url("/ws")) as ws:  # no Origin: a CLI or mobile client
        assert (await recv(ws))["event"] == "connected"


async def test_max_subscriptions(server_factory):
    server = server_factory("daphne", env={"BROADCAST_MAX_SUBSCRIPTIONS": "2"})
    async with await connect(server.ws_url("/ws")) as ws:
        await expect(ws, "connected")
        assert (await subscribe(ws, "a"))["event"] == "subscribed"
        assert (await subscribe(ws, "b"))["event"] == "subscribed"
        assert (await subscribe(ws, "c"))["data"]["code"] == 4029


async def test_max_connections_closes_with_4100(server_factory):
    server = server_factory("daphne", env={"BROADCAST_MAX_CONNECTIONS": "2"})
    async with await connect(server.ws_url("/ws")) as a, await connect(server.ws_url("/ws")) as b:
        await expect(a, "connected")
        await expect(b, "connected")
        async with await connect(server.ws_url("/ws")) as c:
            assert (await expect(c, "error"))["data"]["code"] == 4100
            assert await closed_with(c) == 4100


async def test_client_rate_limit(server_factory):
    server = server_factory("daphne", env={"BROADCAST_CLIENT_RATE_LIMIT": "5"})
    async with await connect(server.ws_url("/ws")) as ws:
        await expect(ws, "connected")
        for _ in range(30):
            await ws.send(json.dumps({"action": "ping"}))
        frames = []
        try:
            while True:
                frames.append(await recv(ws, 5))
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code
        events = [f["event"] for f in frames]
        assert "pong" in events
        assert any(f["event"] == "error" and f["data"]["code"] == 4080 for f in frames)
        assert code == 4008


async def test_silent_connection_is_closed_after_activity_timeout(server_factory):
    server = server_factory("daphne", env={"BROADCAST_ACTIVITY_TIMEOUT": "1"})
    async with await connect(server.ws_url("/ws")) as ws:
        await expect(ws, "connected")
        assert await closed_with(ws, 15) == 4201


async def test_expired_token_gets_error_then_close(server_factory):
    server = server_factory("daphne")
    token = make_token(9, ttl=2)
    async with await connect(server.ws_url(f"/ws?auth_token={token}")) as ws:
        await expect(ws, "connected")
        frame = await expect(ws, "error", timeout=20)
        assert frame["data"]["code"] == 4011
        assert await closed_with(ws) == 4011


@pytest.mark.parametrize("kind", KINDS)
async def test_shutdown_closes_sockets_with_1012(server_factory, kind):
    server = server_factory(kind)
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        server.process.send_signal(signal.SIGTERM)
        assert await closed_with(ws, 20) == 1012


async def test_websocket_disabled_refuses_handshakes_but_serves_http(server_factory):
    import httpx

    server = server_factory("daphne", env={"BROADCAST_WEBSOCKET_ENABLED": "false"})
    for path in ("/ws", "/ws?channel=general"):
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(server.ws_url(path))
        assert info.value.response.status_code == 403
    async with httpx.AsyncClient() as client:
        assert (await client.get(server.url("/metrics"))).status_code == 200
