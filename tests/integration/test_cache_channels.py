"""Cache channels on real daphne and uvicorn processes: raw Pusher and native frames, one node and two over Redis.

A late subscriber gets the last event right after its subscription answer; an empty cache answers
``pusher:cache_miss`` (native: ``cache_miss``); client events and presence events are not cached;
with the redis backend two servers share the cache, and it expires after ``CACHE_CHANNEL_TTL``.
Also the PyPI ``pusher`` SDK's encrypted triggers through a cache channel (``private-encrypted-cache-*``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pusher
import pytest
from nacl.secret import SecretBox

from tests.integration import wsclient
from tests.integration.pusher_client import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    PUSHER_ENV,
    PusherSocket,
    channel_auth,
    expect,
    nothing,
    recv,
    send,
)
from tests.integration.redis_support import redis_env, wait_until

pytestmark = pytest.mark.integration

MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
ENV = {**PUSHER_ENV, "PUSHER_ENCRYPTION_MASTER_KEY_BASE64": MASTER_KEY}


def api(server) -> pusher.Pusher:
    return pusher.Pusher(
        app_id=APP_ID,
        key=APP_KEY,
        secret=APP_SECRET,
        host="127.0.0.1",
        port=server.port,
        ssl=False,
        encryption_master_key_base64=MASTER_KEY,
    )


async def trigger(server, channel, event, data):
    await asyncio.to_thread(api(server).trigger, channel, event, data)


@pytest.fixture(params=["daphne", "uvicorn"], scope="module")
def server(request, migrated_db_path, tmp_path_factory):
    from tests.servers import ServerProcess

    srv = ServerProcess(
        request.param,
        env={"DATABASE_PATH": str(migrated_db_path), **ENV},
        log_path=tmp_path_factory.mktemp("cache") / f"{request.param}.log",
    ).start()
    yield srv
    srv.stop()
    if request.session.testsfailed:
        print(srv.log_tail(100))


async def next_frame(ps: PusherSocket) -> dict:
    """The next frame that is not a keep-alive."""
    while True:
        frame = await recv(ps.ws)
        if frame["event"] not in ("pusher:ping", "pusher:pong"):
            return frame


# -- one server ---------------------------------------------------------------------------------
async def test_empty_cache_answers_cache_miss_right_after_subscription_succeeded(server):
    async with PusherSocket(server) as ps:
        ack = await ps.subscribe("cache-empty-1")
        assert ack["event"] == "pusher_internal:subscription_succeeded"
        frame = await next_frame(ps)
        assert frame == {"event": "pusher:cache_miss", "channel": "cache-empty-1"}, frame


async def test_late_subscriber_gets_the_last_event_first(server):
    await trigger(server, "cache-prices", "price", {"v": 1})
    await trigger(server, "cache-prices", "price", {"v": 2})
    async with PusherSocket(server) as ps:
        await ps.subscribe("cache-prices")
        frame = await next_frame(ps)
        assert frame["event"] == "price" and frame["channel"] == "cache-prices" and frame["data"] == {"v": 2}
        await nothing(ps.ws, 0.3)  # only the last one, once
        await trigger(server, "cache-prices", "price", {"v": 3})
        assert (await expect(ps.ws, "price"))["data"] == {"v": 3}  # and live ones after it


async def test_native_clients_get_the_cached_event_or_cache_miss_after_subscribed(server):
    await trigger(server, "cache-native", "state", {"on": True})
    async with await wsclient.connect(server.ws_url("/ws")) as ws:
        await wsclient.expect(ws, "connected")
        await ws.send(json.dumps({"action": "subscribe", "channel": "cache-native"}))
        assert (await wsclient.expect(ws, "subscribed"))["channel"] == "cache-native"
        cached = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (
            cached["event"] == "state"
            and cached["data"] == {"on": True}
            and cached["channel"] == "cache-native"
        )
        await ws.send(json.dumps({"action": "subscribe", "channel": "cache-native-empty"}))
        await wsclient.expect(ws, "subscribed")
        miss = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert (
            miss["event"] == "cache_miss" and miss["channel"] == "cache-native-empty" and miss["data"] == {}
        )


async def test_client_events_and_presence_events_are_not_cached(server):
    user = "31"
    async with PusherSocket(server) as a, PusherSocket(server) as b:
        await a.join("presence-cache-room.1", user, {"name": "A"})
        assert (await next_frame(a))["event"] == "pusher:cache_miss"
        await b.join("presence-cache-room.1", "32", {"name": "B"})
        assert (await next_frame(b))["event"] == "pusher:cache_miss"  # member_added is not an event to cache
        await send(a.ws, "client-typing", {"x": 1}, channel="presence-cache-room.1")
        await expect(b.ws, "client-typing")
    async with PusherSocket(server) as late:
        await late.join("presence-cache-room.1", "33")
        assert (await next_frame(late))["event"] == "pusher:cache_miss"  # the whisper was not kept


async def test_private_cache_channel_is_authorized_by_its_rule(server):
    await trigger(server, "private-cache-user.5", "balance", {"eur": 10})
    async with PusherSocket(server) as ps:
        refused = await ps.subscribe("private-cache-user.5", auth=f"{APP_KEY}:{'0' * 64}")
        assert refused["event"] == "pusher:subscription_error"
        await ps.subscribe("private-cache-user.5")
        frame = await next_frame(ps)
        assert frame["event"] == "balance" and frame["channel"] == "private-cache-user.5"
    async with await wsclient.connect(server.ws_url(f"/ws?auth_token={wsclient.make_token(6)}")) as ws:
        await wsclient.expect(ws, "connected")
        await ws.send(json.dumps({"action": "subscribe", "channel": "private-cache-user.5"}))
        assert (await wsclient.expect(ws, "error"))["data"]["code"] == 4030  # user 6 may not


async def test_encrypted_cache_channel_keeps_the_sealed_event(server):
    channel = "private-encrypted-cache-user.7"
    await trigger(server, channel, "statement", {"balance": 7})
    async with PusherSocket(server) as ps:
        await ps.subscribe(channel, auth=channel_auth(ps.socket_id, channel))
        frame = await next_frame(ps)
        assert frame["event"] == "statement" and set(frame["data"]) == {"nonce", "ciphertext"}
        key = base64.b64decode(MASTER_KEY)
        import hashlib

        box = SecretBox(hashlib.sha256(channel.encode() + key).digest())
        plain = box.decrypt(
            base64.b64decode(frame["data"]["ciphertext"]), base64.b64decode(frame["data"]["nonce"])
        )
        assert json.loads(plain) == {"balance": 7}
        await send(ps.ws, "client-x", {"leak": 1}, channel=channel)
        error = await expect(ps.ws, "pusher:error")
        assert error["data"]["code"] is None and "encrypted" in error["data"]["message"]


# -- two servers over Redis --------------------------------------------------------------------------
@pytest.mark.redis
async def test_two_servers_share_the_cache_through_redis_and_it_expires(
    server_factory, redis_url, redis_prefix
):
    import redis

    env = {**redis_env(redis_url, redis_prefix), **ENV, "BROADCAST_CACHE_CHANNEL_TTL": "5"}
    a = server_factory("daphne", env=env)
    b = server_factory("uvicorn", env=env)
    # Nobody listens anywhere when it is published: the cache is kept by the publish, not by a node.
    await trigger(a, "cache-score", "goal", {"home": 1})
    async with PusherSocket(b) as on_b:
        await on_b.subscribe("cache-score")
        frame = await next_frame(on_b)
        assert frame["event"] == "goal" and frame["data"] == {"home": 1}
        await trigger(b, "cache-score", "goal", {"home": 2})
        assert (await expect(on_b.ws, "goal"))["data"] == {"home": 2}
    async with await wsclient.connect(a.ws_url("/ws")) as native:
        await wsclient.expect(native, "connected")
        await native.send(json.dumps({"action": "subscribe", "channel": "cache-score"}))
        await wsclient.expect(native, "subscribed")
        cached = json.loads(await asyncio.wait_for(native.recv(), 10))
        assert cached["event"] == "goal" and cached["data"] == {"home": 2} and cached.get("id")

    client = redis.Redis.from_url(redis_url)
    try:
        key = f"{redis_prefix}bc:cache:cache-score"
        assert 0 < client.pttl(key) <= 5000
        await wait_until(lambda: not client.exists(key), 15, "the cached event to expire")
    finally:
        client.close()
    async with PusherSocket(a) as late:
        await late.subscribe("cache-score")
        assert (await next_frame(late)) == {"event": "pusher:cache_miss", "channel": "cache-score"}


@pytest.mark.redis
@pytest.mark.parametrize("history", [True, False])
async def test_redis_publish_keeps_the_last_event_with_and_without_history(redis_url, redis_prefix, history):
    from django.test import override_settings

    from django_broadcasting.backends.redis import RedisBackend
    from django_broadcasting.backends.redis.cache import RedisChannelCache
    from django_broadcasting.messages import Message

    settings = {"REDIS_URL": redis_url, "CHANNELS_PREFIX": redis_prefix, "HISTORY_ENABLED": history}
    with override_settings(BROADCASTING=settings):
        backend = RedisBackend("redis")
        cache = RedisChannelCache(backend)
        assert await cache.get("cache-a") is None
        receipt = await asyncio.to_thread(backend.publish, [Message("cache-a", "e", {"n": 1})])
        await backend.apublish([Message("cache-a", "e", {"n": 2}), Message("cache-a", "client-x", {"n": 3})])
        cached = await cache.get("cache-a")
        assert cached.event == "e" and cached.data == {"n": 2}
        assert (cached.id is not None) is history and (receipt.ids[0] is not None) is history
        await backend.aclose()
