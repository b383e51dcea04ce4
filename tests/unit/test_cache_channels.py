"""Cache channels without I/O: which events are cached, the memory store, the Redis commands, the hub's hand-over."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.test import override_settings

from django_broadcasting.backends.cache import MemoryChannelCache, cacheable, is_cache_channel
from django_broadcasting.backends.redis import RedisBackend
from django_broadcasting.messages import Message
from django_broadcasting.server import cache as server_cache
from django_broadcasting.server.connection import Connection
from django_broadcasting.server.hub import Hub
from django_broadcasting.server.protocols.native import NATIVE
from django_broadcasting.server.protocols.pusher import PUSHER


@pytest.mark.parametrize(
    ("name", "cached"),
    [
        ("cache-prices", True),
        ("presence.cache-room.1", True),
        ("private-encrypted-cache-user.5", True),
        ("prices", False),
        ("presence.chat.1", False),
        ("private-encrypted-user.5", False),
        ("user.cache-5", False),
    ],
)
def test_cache_channel_names(name, cached):
    assert is_cache_channel(name) is cached


def test_only_server_events_are_cached():
    assert cacheable(Message("cache-x", "price", {}))
    assert not cacheable(Message("cache-x", "client-typing", {}))
    whisper = Message("cache-x", "typing", {})
    whisper.origin = "whisper"
    joined = Message("presence.cache-x", "member_added", {"id": "1"})
    joined.origin = "presence"
    assert not cacheable(whisper) and not cacheable(joined)
    assert not cacheable(Message("x", "price", {}))


def test_memory_cache_keeps_the_last_event_expires_and_is_bounded(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("django_broadcasting.backends.cache.time.monotonic", lambda: now[0])
    cache = MemoryChannelCache(ttl=10, max_channels=2)
    first, second = Message("cache-a", "e", {"n": 1}), Message("cache-a", "e", {"n": 2})
    cache.record(first)
    cache.record(second)
    assert cache.peek("cache-a") is second
    cache.record(Message("cache-b", "e", {}))
    cache.record(Message("cache-c", "e", {}))  # a third channel: the least recently written goes
    assert cache.peek("cache-a") is None and cache.stats()["channels"] == 2 and cache.stats()["evicted"] == 1
    now[0] += 10
    assert cache.peek("cache-b") is None
    cache.prune()
    assert cache.stats()["channels"] == 0


@override_settings(BROADCASTING={"CACHE_CHANNEL_TTL": 90, "CHANNELS_PREFIX": "p:"})
def test_redis_commands_keep_a_cache_channels_event_in_the_publish_script():
    backend = RedisBackend("redis")
    cached, plain, whisper = (
        Message("cache-a", "e", {}),
        Message("b", "e", {}),
        Message("cache-a", "client-x", {}, history=False),
    )
    commands = backend._commands([cached, plain, whisper])
    assert commands[0][1:5] == (3, "p:bc:offset:cache-a", "p:bc:history:cache-a", "p:bc:cache:cache-a")
    assert commands[0][-1] == "90000"  # PX, in milliseconds
    assert commands[1][1] == 2  # history only
    assert commands[2][0] == "PUBLISH"  # client events: no history, no cache


@override_settings(BROADCASTING={"HISTORY_ENABLED": False})
def test_redis_commands_without_history_still_keep_the_cache():
    commands = RedisBackend("redis")._commands([Message("cache-a", "e", {}), Message("b", "e", {})])
    assert commands[0][1] == 3 and commands[0][7] == "0"  # history size '0': the script skips it
    assert commands[1][0] == "PUBLISH"


# -- the hub hands the cached event over ------------------------------------------------------------
class SlowCache:
    """A store that waits on I/O (like Redis): ``get`` returns once ``release`` is set."""

    records = False
    awaits = True

    def __init__(self, message):
        self.message = message
        self.release = asyncio.Event()

    def record(self, message):  # pragma: no cover - never called: records is False
        raise AssertionError

    async def get(self, channel):
        await self.release.wait()
        return self.message

    def prune(self):
        pass

    def stats(self):
        return {}


def _subscriber(hub, channel, protocol=NATIVE):
    sent = []

    async def send(message):
        sent.append(message["text"])

    async def on_close(code):
        pass

    conn = Connection(send, "9.9", protocol, None, buffer_limit=100, on_close=on_close)
    hub.subscribers.setdefault(channel, set()).add(conn)
    conn.channels.add(channel)
    return conn, sent


@pytest.mark.parametrize("live_is_cached", [False, True])
async def test_live_messages_wait_behind_the_cached_event_and_are_not_repeated(live_is_cached):
    hub = Hub()
    cached = Message("cache-a", "e", {"n": 1})
    hub.cache = SlowCache(cached)
    conn, sent = _subscriber(hub, "cache-a")
    task = asyncio.ensure_future(hub.send_cached(conn, "cache-a"))
    await asyncio.sleep(0)
    live = cached if live_is_cached else Message("cache-a", "e", {"n": 2})
    hub.deliver(live)  # arrives while the cache is read
    assert sent == []
    hub.cache.release.set()
    await task
    frames = [json.loads(text)["data"] for text in sent]
    assert frames == ([{"n": 1}] if live_is_cached else [{"n": 1}, {"n": 2}])
    assert conn in hub.subscribers["cache-a"]


async def test_a_miss_sends_the_protocols_frame_and_calls_the_hook(monkeypatch):
    misses = []
    monkeypatch.setattr(server_cache, "on_cache_miss", misses.append)
    hub = Hub()
    hub.cache = MemoryChannelCache(ttl=60)
    conn, sent = _subscriber(hub, "cache-empty", PUSHER)
    await hub.send_cached(conn, "cache-empty")
    assert [json.loads(text) for text in sent] == [{"event": "pusher:cache_miss", "channel": "cache-empty"}]
    assert misses == ["cache-empty"]
    native, native_sent = _subscriber(hub, "cache-empty-2")
    await hub.send_cached(native, "cache-empty-2")
    frame = json.loads(native_sent[0])
    assert frame["event"] == "cache_miss" and frame["channel"] == "cache-empty-2" and frame["data"] == {}


async def test_the_hub_records_server_events_as_it_delivers():
    hub = Hub()
    hub.cache = hub._cache_writer = MemoryChannelCache(ttl=60)
    hub.deliver(Message("cache-a", "e", {"n": 1}))
    hub.deliver(Message("cache-a", "client-e", {"n": 2}))
    hub.deliver(Message("other", "e", {}))
    assert hub.cache.peek("cache-a").data == {"n": 1}
    assert hub.cache.peek("other") is None


def test_memory_cache_is_bounded_in_bytes():
    cache = MemoryChannelCache(ttl=60, max_bytes=100)
    big = Message("cache-a", "e", {"t": "x" * 60})
    cache.record(big)
    cache.record(Message("cache-a", "e", {"t": "y" * 60}))  # replaces: counted once
    assert cache.stats()["bytes"] == len(big.data_json) and cache.stats()["evicted"] == 0
    cache.record(Message("cache-b", "e", {"t": "z" * 60}))  # over the budget: the oldest goes
    assert cache.peek("cache-a") is None and cache.peek("cache-b") is not None
    assert cache.stats()["evicted"] == 1 and cache.stats()["bytes"] <= 100
