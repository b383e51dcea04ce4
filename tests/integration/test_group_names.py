"""Finding 3 of the security review, replayed: a channel name cannot take over another channel's group.

Channels groups allow only ``[A-Za-z0-9-_.]`` and fewer than 100 characters, so names such as
``#server-to-user-1`` are carried by a hashed group ``bc.h.<sha256>``. A public name that spells
that group (``h.<sha256>``) used to map to the same group: an anonymous socket subscribing to it
and leaving again removed the server process from the group, and the user's deliveries stopped
while the trigger still answered 202. Names that start with ``h.`` are hashed too now.
"""

from __future__ import annotations

import hashlib
import json
import time

import httpx
import pytest

from django_broadcasting.backends.local.trigger import sign
from tests.integration import wsclient

pytestmark = [pytest.mark.integration, pytest.mark.redis]


async def trigger(server, channel: str, event: str) -> None:
    body = json.dumps({"channel": channel, "event": event, "data": {}}).encode()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            server.url("/api/broadcast/events"),
            content=body,
            headers={"Content-Type": "application/json", **sign(body, int(time.time()))},
        )
    assert response.status_code == 202, response.text


async def test_a_public_name_spelling_a_hashed_group_cannot_silence_it(server_factory, redis_prefix):
    env = {"BROADCAST_CHANNEL_LAYER": "redis", "BROADCAST_CHANNEL_LAYER_PREFIX": f"{redis_prefix}asgi"}
    server = server_factory("daphne", env=env)
    victim_channel = "#server-to-user-1"
    spelled = "h." + hashlib.sha256(victim_channel.encode()).hexdigest()[:40]
    token = wsclient.make_token(1)
    async with await wsclient.connect(server.ws_url(f"/ws?auth_token={token}")) as victim:
        await wsclient.expect(victim, "connected")
        assert (await wsclient.subscribe(victim, victim_channel))["event"] == "subscribed"
        await trigger(server, victim_channel, "before")
        await wsclient.expect(victim, "before")

        async with await wsclient.connect(server.ws_url("/ws")) as attacker:
            await wsclient.expect(attacker, "connected")
            assert (await wsclient.subscribe(attacker, spelled))["event"] == "subscribed"
            await attacker.send(json.dumps({"action": "unsubscribe", "channel": spelled}))
            await wsclient.expect(attacker, "unsubscribed")

        await trigger(server, victim_channel, "after")
        assert (await wsclient.expect(victim, "after"))["channel"] == victim_channel
