"""Memory is bounded by configuration, not by what clients send (a real daphne server, real sockets).

The attack this reproduces: one authenticated socket whispering large client events on a presence
channel used to keep each one in the in-memory history as a decoded object (~25x its wire size),
and the memory stayed after the socket left (76 -> 211 MiB). Client events are now delivered live
and not kept; with ``HISTORY_CLIENT_EVENTS`` on they are kept as JSON within the byte budgets.
"""

from __future__ import annotations

import json

import psutil
import pytest
import websockets

from tests.integration.wsclient import connect, expect, make_token

pytestmark = pytest.mark.integration

CHANNELS = [f"presence.chat.{n}" for n in range(8)]
PER_CHANNEL = 100  # the default HISTORY_SIZE: every entry would stay
# 12 KB on the wire (under the 16 KB frame limit); as Python objects about 100 KB.
PAYLOAD = list(range(2500))


def rss_mib(server) -> float:
    return psutil.Process(server.pid).memory_info().rss / 2**20


async def flood(server) -> None:
    token = make_token(1)
    url = server.ws_url(f"/ws?auth_token={token}")
    async with (
        await connect(url) as sender,
        await connect(server.ws_url(f"/ws?auth_token={make_token(2)}")) as peer,
    ):
        await expect(sender, "connected")
        await expect(peer, "connected")
        for ws in (sender, peer):
            for channel in CHANNELS:
                await ws.send(json.dumps({"action": "subscribe", "channel": channel}))
                await expect(ws, "subscribed", channel=channel)
        for n in range(PER_CHANNEL):
            for channel in CHANNELS:
                frame = {
                    "action": "whisper",
                    "channel": channel,
                    "event": "typing",
                    "data": {"n": n, "p": PAYLOAD},
                }
                await sender.send(json.dumps(frame, separators=(",", ":")))
            for channel in CHANNELS:  # the peer receives each one live: nothing is lost
                got = await expect(peer, "client-typing", channel=channel)
                assert got["data"]["n"] == n


@pytest.mark.parametrize(
    "env",
    [
        {},  # client events not kept (the default)
        {"BROADCAST_HISTORY_CLIENT_EVENTS": "true", "BROADCAST_HISTORY_MAX_BYTES": str(2 * 2**20)},
    ],
    ids=["not-kept", "kept-within-budget"],
)
async def test_a_whisper_flood_does_not_grow_the_server(server_factory, env):
    server = server_factory("daphne", env={"BROADCAST_CLIENT_RATE_LIMIT": "0", **env})
    # Warm up (imports, first connection) so the measurement sees the flood only.
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
    before = rss_mib(server)
    await flood(server)
    grown = rss_mib(server) - before
    # 800 x 12 KB is 9.6 MB on the wire; kept decoded it grew the server by ~90 MiB.
    assert grown < 25, f"server RSS grew {grown:.1f} MiB"


async def test_per_address_channel_and_presence_info_limits(server_factory, migrated_db_path):
    """Each limit answers with the documented code, and the server keeps serving everyone else."""
    server = server_factory(
        "daphne",
        env={
            # The test client is on loopback, which is never limited: it poses as a proxy that
            # passes on its client's address.
            "BROADCAST_TRUSTED_PROXIES": "127.0.0.1",
            "BROADCAST_MAX_CONNECTIONS_PER_ADDRESS": "2",
            "BROADCAST_MAX_CHANNELS": "3",
            "BROADCAST_MAX_PRESENCE_INFO_SIZE": "40",
        },
    )
    client = {"additional_headers": {"X-Forwarded-For": "198.51.100.7"}}
    a = await connect(server.ws_url("/ws?channel=c1"), **client)
    b = await connect(server.ws_url("/ws?channel=c2"), **client)
    try:
        await expect(a, "subscribed")
        await expect(b, "subscribed")
        # A third socket from the same address: error 4100, then close 4100.
        async with await connect(server.ws_url("/ws"), **client) as c:
            error = await expect(c, "error")
            assert error["data"]["code"] == 4100
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await c.recv()
            assert closed.value.rcvd.code == 4100
        # Channels per process: c1, c2 and one more; the fourth is refused.
        await a.send(json.dumps({"action": "subscribe", "channel": "c3"}))
        await expect(a, "subscribed", channel="c3")
        await a.send(json.dumps({"action": "subscribe", "channel": "c4"}))
        refused = await expect(a, "error")
        assert refused["data"]["code"] == 4100 and refused["channel"] == "c4"
        # The socket is still served, and another client address is not affected.
        await a.send(json.dumps({"action": "ping"}))
        await expect(a, "pong")
        other = {"additional_headers": {"X-Forwarded-For": "203.0.113.9"}}
        async with await connect(server.ws_url("/ws?channel=c1"), **other) as d:
            await expect(d, "subscribed")
    finally:
        await a.close()
        await b.close()


async def test_presence_info_larger_than_the_limit_is_refused(server_factory, migrated_db_path):
    server = server_factory("daphne", env={"BROADCAST_MAX_PRESENCE_INFO_SIZE": "10"})
    # The built-in presence rule answers {"id": ..., "name": ...}: more than 10 bytes.
    async with await connect(
        server.ws_url(f"/ws?auth_token={make_token(7, name='Someone with a long name')}")
    ) as ws:
        await expect(ws, "connected")
        await ws.send(json.dumps({"action": "subscribe", "channel": "presence.chat.1"}))
        refused = await expect(ws, "error")
        assert refused["data"]["code"] == 4100, refused
        await ws.send(json.dumps({"action": "subscribe", "channel": "general"}))
        await expect(ws, "subscribed", channel="general")


async def test_the_pusher_protocol_answers_a_server_limit_with_a_subscription_error(server_factory):
    from tests.integration.pusher_client import PUSHER_ENV, PusherSocket, expect, send

    server = server_factory("daphne", env={**PUSHER_ENV, "BROADCAST_MAX_CHANNELS": "1"})
    async with PusherSocket(server) as client:
        assert (await client.subscribe("first"))["event"] == "pusher_internal:subscription_succeeded"
        refused = await client.subscribe("second")
        assert refused["event"] == "pusher:subscription_error", refused
        assert refused["data"]["status"] == 429 and "limit" in refused["data"]["error"]
        await send(client.ws, "pusher:ping", {})
        await expect(client.ws, "pusher:pong")
