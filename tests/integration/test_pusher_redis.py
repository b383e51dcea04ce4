"""Pusher clients on several nodes (daphne + uvicorn) sharing Redis: events, whispers and presence cross nodes."""

from __future__ import annotations

import asyncio

import pusher
import pytest

from tests.integration import wsclient
from tests.integration.pusher_client import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    PUSHER_ENV,
    PusherSocket,
    expect,
    send,
)
from tests.integration.redis_support import redis_env

pytestmark = [pytest.mark.integration, pytest.mark.redis]


@pytest.fixture
def nodes(server_factory, redis_url, redis_prefix):
    env = {**redis_env(redis_url, redis_prefix), **PUSHER_ENV}
    return server_factory("daphne", env=env), server_factory("uvicorn", env=env)


async def test_api_events_and_whispers_reach_every_node(nodes):
    a, b = nodes
    api = pusher.Pusher(
        app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, host="127.0.0.1", port=b.port, ssl=False
    )
    async with (
        PusherSocket(a) as on_a,
        PusherSocket(b) as on_b,
        await wsclient.connect(b.ws_url(f"/ws?auth_token={wsclient.make_token(5)}")) as native,
    ):
        await wsclient.expect(native, "connected")
        await wsclient.subscribe(native, "user.5")
        await on_a.subscribe("private-user.5")
        await on_b.subscribe("private-user.5")
        await asyncio.to_thread(api.trigger, "private-user.5", "paid", {"n": 1})
        assert (await expect(on_a.ws, "paid"))["data"] == {"n": 1}
        assert (await expect(on_b.ws, "paid"))["data"] == {"n": 1}
        assert (await wsclient.expect(native, "paid"))["data"] == {"n": 1}
        await send(on_a.ws, "client-typing", {"from": "a"}, channel="private-user.5")
        assert (await expect(on_b.ws, "client-typing"))["data"] == {"from": "a"}
        assert (await wsclient.expect(native, "client-typing"))["data"] == {"from": "a"}


async def test_presence_across_nodes(nodes):
    a, b = nodes
    async with PusherSocket(a) as alice, PusherSocket(b) as bob:
        await alice.join("presence-chat.5", "1", {"name": "Alice"})
        ack = await bob.join("presence-chat.5", "2", {"name": "Bob"})
        assert ack["data"]["presence"]["count"] == 2
        assert ack["data"]["presence"]["hash"] == {"1": {"name": "Alice"}, "2": {"name": "Bob"}}
        added = await expect(alice.ws, "pusher_internal:member_added")
        assert added["data"] == {"user_id": "2", "user_info": {"name": "Bob"}}
        await bob.ws.close()
        removed = await expect(alice.ws, "pusher_internal:member_removed")
        assert removed["data"] == {"user_id": "2"}
