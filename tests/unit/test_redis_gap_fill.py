"""The Redis transport reads back what its link missed: a jump in a channel's offsets is filled
from the history before delivery goes on."""

from __future__ import annotations

import asyncio
import json

from django_broadcasting.backends.redis import RedisKeys
from django_broadcasting.backends.redis.history import Window
from django_broadcasting.backends.redis.transport import RedisTransport


class FakeHistory:
    """What the publish script stored: offsets 1..n of epoch ``e1`` on channel ``news``."""

    def __init__(self, count):
        self.count = count
        self.reads = []

    async def read(self, channel, after):
        self.reads.append(after)
        await asyncio.sleep(0)  # a round trip: live messages may arrive meanwhile
        entries = [(n, payload(n)) for n in range(after + 1, self.count + 1)]
        return Window("e1", self.count, entries)


class FakeDriver:
    keys = RedisKeys("t:")
    socket_timeout = 1.0

    def __init__(self, history):
        self.history = history

    def create_history(self):
        return self.history


def payload(n):
    return {"channel": "news", "event": "tick", "data_json": json.dumps({"n": n}), "id": f"e1:{n}"}


def wire(n):
    body = dict(payload(n))
    del body["id"]
    return f"e1:{n} {json.dumps(body)}".encode()


def new_transport(history):
    transport = RedisTransport(FakeDriver(history))
    delivered = []
    transport._on_message = lambda p: delivered.append(int(p["id"].rsplit(":", 1)[1]))
    transport.wanted.add("news")
    return transport, delivered


async def wait_for_fills(transport):
    while transport._gap_fills:
        await asyncio.gather(*transport._gap_fills)


async def test_a_gap_is_read_back_from_the_history_in_order():
    history = FakeHistory(count=6)
    transport, delivered = new_transport(history)
    for n in (1, 2, 5):  # 3 and 4 never arrived on this link
        transport._message(wire(n))
    transport._message(wire(6))  # arrives while the history is read: held, then put after it
    await wait_for_fills(transport)
    assert delivered == [1, 2, 3, 4, 5, 6]
    assert history.reads == [2]
    transport._message(wire(7))  # back to live delivery
    assert delivered[-1] == 7 and not transport._buffers


async def test_an_offset_already_passed_is_delivered_without_moving_the_position():
    # After a crash failover the new primary may hand out offsets the old one had used: those
    # messages are new, so they are delivered (a duplicate is harmless, a gap is not), and the
    # position stays where it was, so no gap is read back for them.
    history = FakeHistory(count=3)
    transport, delivered = new_transport(history)
    for n in (1, 2, 3, 2, 3, 4):
        transport._message(wire(n))
    assert delivered == [1, 2, 3, 2, 3, 4]
    assert history.reads == [] and transport._last["news"] == "e1:4"


async def test_a_new_epoch_starting_at_one_is_no_gap():
    history = FakeHistory(count=0)
    transport, delivered = new_transport(history)
    transport._message(wire(4))
    body = dict(payload(1))
    del body["id"]
    transport._message(f"e2:1 {json.dumps(body)}".encode())
    assert len(delivered) == 2 and history.reads == []


async def test_the_late_live_copy_of_a_replayed_message_is_dropped():
    # The catch-up's history read (another connection) can answer before this link brings the
    # live copies of what it returned: those are the same messages, not reused offsets.
    history = FakeHistory(count=5)
    transport, delivered = new_transport(history)
    for n in (1, 2, 5):  # 3 and 4 missed: read back with 5 from the history
        transport._message(wire(n))
    await wait_for_fills(transport)
    assert delivered == [1, 2, 3, 4, 5]
    transport._message(wire(3))
    transport._message(wire(4))
    assert delivered == [1, 2, 3, 4, 5]
    # Another message under a replayed id (a new primary reusing an offset) is still delivered.
    body = {**payload(4), "data_json": json.dumps({"n": "other"})}
    del body["id"]
    transport._message(f"e1:4 {json.dumps(body)}".encode())
    assert delivered == [1, 2, 3, 4, 5, 4]
    transport._message(wire(6))  # the live stream moves on: the replayed ids are forgotten
    assert delivered[-1] == 6 and not transport._replayed
