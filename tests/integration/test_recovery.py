"""History and recovery over the native protocol: resubscribe with ``last_id``, get what was missed, in order."""

from __future__ import annotations

import asyncio
import json

import pytest

from django_broadcasting.http.trigger import apost
from django_broadcasting.messages import Message
from tests.integration.redis_support import collect, redis_env, run_publisher
from tests.integration.wsclient import connect, expect, nothing, recv

pytestmark = pytest.mark.integration


async def publish(server, channel, event, data):
    await apost(Message.for_channels([channel], event, data), url=server.url("/api/broadcast/events"))


async def resubscribe(server, channel: str, last_id: str):
    ws = await connect(server.ws_url("/ws"))
    await expect(ws, "connected")
    await ws.send(json.dumps({"action": "subscribe", "channel": channel, "last_id": last_id}))
    assert (await recv(ws))["event"] == "subscribed"
    return ws


async def test_in_memory_history_recovers_missed_messages_in_order(server_factory):
    server = server_factory("uvicorn")
    ws = await connect(server.ws_url("/ws?channel=general"))
    await expect(ws, "subscribed")
    await publish(server, "general", "tick", {"n": 0})
    first = await expect(ws, "tick")
    assert first["id"].endswith(":1")
    await ws.close()
    for n in range(1, 4):
        await publish(server, "general", "tick", {"n": n})
    ws = await resubscribe(server, "general", first["id"])
    try:
        missed = [await recv(ws) for _ in range(3)]
        assert [f["data"]["n"] for f in missed] == [1, 2, 3]
        assert [f["event"] for f in missed] == ["tick"] * 3
        done = await recv(ws)
        assert done["event"] == "recovered" and done["data"]["count"] == 3
        assert done["data"]["last_id"] == missed[-1]["id"]
        # Live messages follow, numbered on.
        await publish(server, "general", "tick", {"n": 4})
        live = await expect(ws, "tick")
        assert live["data"]["n"] == 4 and live["id"].endswith(":5")
    finally:
        await ws.close()


async def test_nothing_missed_is_an_empty_recovery(server_factory):
    server = server_factory("daphne")
    ws = await connect(server.ws_url("/ws?channel=general"))
    await expect(ws, "subscribed")
    await publish(server, "general", "tick", {"n": 0})
    last = (await expect(ws, "tick"))["id"]
    await ws.close()
    ws = await resubscribe(server, "general", last)
    try:
        done = await recv(ws)
        assert done["event"] == "recovered" and done["data"] == {
            "channel": "general",
            "count": 0,
            "last_id": last,
        }
    finally:
        await ws.close()


@pytest.mark.parametrize("last_id", ["deadbeef:1", "not-an-id", "x:99999"])
async def test_unknown_epoch_or_bad_id_fails_explicitly(server_factory, last_id):
    server = server_factory("uvicorn")
    await publish(server, "general", "tick", {"n": 0})
    ws = await resubscribe(server, "general", last_id)
    try:
        failed = await recv(ws)
        assert failed["event"] == "recovery_failed" and failed["channel"] == "general"
        assert failed["data"]["code"] == 4290 and failed["data"]["last_id"] == last_id
        # The subscription stands: live messages arrive.
        await publish(server, "general", "tick", {"n": 1})
        assert (await expect(ws, "tick"))["data"] == {"n": 1}
    finally:
        await ws.close()


async def test_trimmed_history_fails_instead_of_leaving_a_gap(server_factory):
    server = server_factory("uvicorn", env={"BROADCAST_HISTORY_SIZE": "3"})
    ws = await connect(server.ws_url("/ws?channel=general"))
    await expect(ws, "subscribed")
    await publish(server, "general", "tick", {"n": 0})
    first = (await expect(ws, "tick"))["id"]
    await ws.close()
    for n in range(1, 6):
        await publish(server, "general", "tick", {"n": n})
    ws = await resubscribe(server, "general", first)
    try:
        failed = await recv(ws)
        assert failed["event"] == "recovery_failed" and "trimmed" in failed["data"]["message"]
        assert failed["data"]["current_id"].endswith(":6")
        await nothing(ws, 0.3)
    finally:
        await ws.close()


async def test_history_disabled_means_no_ids_and_recovery_fails(server_factory):
    server = server_factory("uvicorn", env={"BROADCAST_HISTORY_ENABLED": "false"})
    ws = await connect(server.ws_url("/ws?channel=general"))
    await expect(ws, "subscribed")
    await publish(server, "general", "tick", {"n": 0})
    assert "id" not in await expect(ws, "tick")
    await ws.close()
    ws = await resubscribe(server, "general", "abc:1")
    try:
        failed = await recv(ws)
        assert failed["event"] == "recovery_failed" and "not enabled" in failed["data"]["message"]
    finally:
        await ws.close()


async def test_redis_history_recovers_on_another_node(server_factory, redis_url, redis_prefix):
    env = redis_env(redis_url, redis_prefix)
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    ws = await connect(a.ws_url("/ws?channel=general"))
    await expect(ws, "subscribed")
    [first] = await asyncio.to_thread(run_publisher, env, "general", 1)
    assert (await expect(ws, "tick"))["id"] == first["id"]
    await ws.close()
    results = await asyncio.to_thread(run_publisher, env, "general", 4)
    ws = await resubscribe(b, "general", first["id"])
    try:
        missed = await collect(ws, "tick", 4)
        assert [f["id"] for f in missed] == [r["id"] for r in results]
        assert (await recv(ws))["event"] == "recovered"
        more = await asyncio.to_thread(run_publisher, env, "general", 1)
        assert (await expect(ws, "tick"))["id"] == more[0]["id"]
        await nothing(ws, 0.3)
    finally:
        await ws.close()
