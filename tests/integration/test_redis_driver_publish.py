"""The redis driver without server processes: settings, errors, loops, one EVALSHA per message."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync

from django_broadcasting.backends.history import parse_id
from django_broadcasting.drivers.redis import RedisDriver
from django_broadcasting.exceptions import TransportError
from django_broadcasting.messages import Message
from tests.servers import free_port


def test_publisher_gets_a_clear_error_when_redis_is_down(settings):
    settings.BROADCASTING = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "REDIS_SOCKET_TIMEOUT": 2}
    driver = RedisDriver("redis")
    started = time.monotonic()
    with pytest.raises(TransportError, match="Redis publish failed"):
        driver.broadcast(Message.for_channels(["general"], "e", {}))
    assert time.monotonic() - started < 3


def test_sync_publish_uses_one_blocking_connection_and_no_event_loop(redis_url, redis_prefix, settings):
    settings.BROADCASTING = {"REDIS_URL": redis_url, "CHANNELS_PREFIX": redis_prefix}
    driver = RedisDriver("redis")
    receipts = [driver.publish(Message.for_channels(["general"], "e", {"n": n})) for n in range(3)]
    ids = [r.ids[0] for r in receipts]
    assert [parse_id(i)[1] for i in ids] == [1, 2, 3]
    assert len({parse_id(i)[0] for i in ids}) == 1
    assert receipts[0].accepted_by.startswith("Redis at ") and receipts[0].count == 1
    # The sync side never starts an event loop: no asyncio client was made, and one lasting
    # blocking connection of this thread served all three calls.
    assert driver._clients == {}
    conn = driver._sync_connection()
    assert conn._sock is not None
    driver.broadcast(Message.for_channels(["general"], "e", {}))  # the older name too
    assert driver._clients == {} and driver._sync_connection() is conn and conn._sock is not None


def test_async_publish_in_throwaway_loops_reuses_one_lasting_client(redis_url, redis_prefix, settings):
    settings.BROADCASTING = {"REDIS_URL": redis_url, "CHANNELS_PREFIX": redis_prefix}
    driver = RedisDriver("redis")
    for n in range(3):
        async_to_sync(driver.apublish)(Message.for_channels(["general"], "e", {"n": n}))
    # async_to_sync ran each call in a throw-away loop; the Redis work ran on one lasting loop.
    [(loop, client)] = driver._clients.items()
    pool = client.connection_pool
    assert (
        not loop.is_closed()
        and len(list(pool._get_free_connections()) + list(pool._get_in_use_connections())) == 1
    )


def test_one_evalsha_per_message_and_a_batch_in_one_round_trip(
    redis_url, redis_prefix, settings, redis_client
):
    settings.BROADCASTING = {"REDIS_URL": redis_url, "CHANNELS_PREFIX": redis_prefix, "HISTORY_SIZE": 5}
    driver = RedisDriver("redis")

    async def run():
        pubsub = driver.client().pubsub()
        await pubsub.subscribe(f"{redis_prefix}a", f"{redis_prefix}b")
        ids = (await driver.apublish(Message.for_channels(["a", "b"], "e", {"x": 1}))).ids
        got = []
        while len(got) < 2:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message:
                got.append(message["data"].decode())
        await pubsub.aclose()
        await driver.aclose()
        return ids, got

    ids, got = asyncio.run(run())
    assert sorted(g.split(" ", 1)[0] for g in got) == sorted(ids)
    for n in range(8):
        async_to_sync(driver.apublish)(Message.for_channels(["a"], "e", {"n": n}))
    assert redis_client.xlen(f"{redis_prefix}bc:history:a") == 5  # HISTORY_SIZE caps the stream
    assert redis_client.pttl(f"{redis_prefix}bc:history:a") > 0  # HISTORY_TTL


def test_history_off_publishes_without_ids(redis_url, redis_prefix, settings, redis_client):
    settings.BROADCASTING = {
        "REDIS_URL": redis_url,
        "CHANNELS_PREFIX": redis_prefix,
        "HISTORY_ENABLED": False,
    }
    assert RedisDriver("redis").publish(Message.for_channels(["a"], "e", {})).ids == (None,)
    assert not redis_client.exists(f"{redis_prefix}bc:history:a")


def test_a_message_that_keeps_no_history_is_published_without_an_id(
    redis_url, redis_prefix, settings, redis_client
):
    settings.BROADCASTING = {"REDIS_URL": redis_url, "CHANNELS_PREFIX": redis_prefix}
    driver = RedisDriver("redis")
    kept = Message("a", "e", {"n": 1})
    whisper = Message("a", "client-typing", {"n": 2}, history=False)
    receipt = driver.publish([kept, whisper, Message("a", "e", {"n": 3})])
    assert receipt.ids[1] is None and parse_id(receipt.ids[0])[1] == 1 and parse_id(receipt.ids[2])[1] == 2
    assert redis_client.xlen(f"{redis_prefix}bc:history:a") == 2  # the whisper is not in the stream
    ids = async_to_sync(driver.apublish)([Message("a", "client-x", {}, history=False)]).ids
    assert ids == (None,) and redis_client.xlen(f"{redis_prefix}bc:history:a") == 2
