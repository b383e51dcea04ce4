"""``Connection.push``: synchronous sends need no task; a stuck client is cut off, not waited for."""

from __future__ import annotations

import asyncio

from django_broadcasting.server.codes import CLOSE_4200_RECONNECT
from django_broadcasting.server.connection import Connection


class Protocol:
    name = "test"


def make(send, limit=3, closes=None):
    async def on_close(code):
        closes.append(code) if closes is not None else None
        await conn.close(code)

    conn = Connection(send, "1.1", Protocol(), None, buffer_limit=limit, on_close=on_close)
    return conn


async def test_push_completes_synchronously_without_a_task():
    sent = []

    async def send(message):
        sent.append(message)

    conn = make(send)
    before = len(asyncio.all_tasks())
    for i in range(100):
        conn.push(f"frame-{i}")
    # Every frame went out inside push() itself: nothing scheduled, nothing buffered.
    assert [m["text"] for m in sent] == [f"frame-{i}" for i in range(100)]
    assert len(asyncio.all_tasks()) == before
    assert conn.buffered == 0 and conn.frames_out == 100


async def test_send_that_suspends_is_finished_in_order():
    gate = asyncio.Event()
    sent = []

    async def send(message):
        if message.get("text") == "first":
            await gate.wait()
        sent.append(message.get("text"))

    conn = make(send, limit=10)
    conn.push("first")
    conn.push("second")
    conn.push("third")
    assert sent == [] and conn.buffered == 2
    gate.set()
    for _ in range(20):
        if len(sent) == 3:
            break
        await asyncio.sleep(0)
    assert sent == ["first", "second", "third"]
    assert conn.buffered == 0


async def test_send_still_suspended_when_the_drain_task_runs_completes():
    """The future the send waits on is still pending when the task takes over (the usual case)."""
    gate = asyncio.Event()
    sent = []

    async def send(message):
        if message.get("text") == "first":
            await gate.wait()
        sent.append(message.get("text"))

    conn = make(send, limit=10)
    conn.push("first")
    conn.push("second")
    for _ in range(5):  # let the drain task start and park on the pending future
        await asyncio.sleep(0)
    assert sent == [] and not conn.closed
    gate.set()
    for _ in range(20):
        if len(sent) == 2:
            break
        await asyncio.sleep(0)
    assert sent == ["first", "second"]
    assert not conn.closed and conn.buffered == 0


async def test_slow_client_is_closed_with_reconnect_code():
    never = asyncio.Event()
    closes = []
    messages = []

    async def send(message):
        messages.append(message)
        if message["type"] == "websocket.send":
            await never.wait()

    conn = make(send, limit=3, closes=closes)
    for i in range(10):
        conn.push(f"f{i}")
    for _ in range(20):
        if closes and any(m["type"] == "websocket.close" for m in messages):
            break
        await asyncio.sleep(0)
    assert closes == [CLOSE_4200_RECONNECT]
    assert conn.closed
    assert {"type": "websocket.close", "code": CLOSE_4200_RECONNECT} in messages
    conn.push("after")  # ignored once closed
    assert not any(m.get("text") == "after" for m in messages)


async def test_failed_send_marks_connection_closed():
    async def send(message):
        raise OSError("socket gone")

    conn = make(send)
    conn.push("x")
    assert conn.closed
