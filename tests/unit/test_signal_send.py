"""``signals.asend_fast``: what ``Signal.asend`` returns, with a lone async receiver awaited in place."""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.dispatch import Signal

from django_broadcasting.signals import asend_fast


@pytest.fixture
def signal() -> Signal:
    return Signal()


def test_no_receiver_sends_nothing(signal: Signal) -> None:
    assert asyncio.run(asend_fast(signal, sender=object)) == []


def test_a_lone_async_receiver_runs_in_the_senders_task(signal: Signal) -> None:
    seen = {}

    async def receiver(sender, **kwargs):
        seen["task"] = asyncio.current_task()
        seen["kwargs"] = kwargs
        return "answer"

    signal.connect(receiver, weak=False)

    async def send():
        seen["sender_task"] = asyncio.current_task()
        return await asend_fast(signal, sender=object, channel="general")

    assert asyncio.run(send()) == [(receiver, "answer")]
    assert seen["task"] is seen["sender_task"]  # no task of its own
    assert seen["kwargs"] == {"signal": signal, "channel": "general"}


def test_sync_receivers_still_run_in_a_thread_as_asend_does(signal: Signal) -> None:
    threads = []

    def receiver(sender, **kwargs):
        threads.append(threading.get_ident())
        return 1

    async def other(sender, **kwargs):
        return 2

    signal.connect(receiver, weak=False)
    signal.connect(other, weak=False)

    async def send():
        return threading.get_ident(), await asend_fast(signal, sender=object)

    loop_thread, responses = asyncio.run(send())
    assert responses == [(receiver, 1), (other, 2)]
    assert threads and threads[0] != loop_thread


def test_several_async_receivers_run_concurrently_as_asend_does(signal: Signal) -> None:
    async def main():
        started = asyncio.Event()
        order = []

        async def first(sender, **kwargs):
            order.append("first")
            await asyncio.wait_for(started.wait(), 2)  # only returns when the second one runs
            return "a"

        async def second(sender, **kwargs):
            order.append("second")
            started.set()
            return "b"

        signal.connect(first, weak=False)
        signal.connect(second, weak=False)
        return await asend_fast(signal, sender=object), order

    responses, order = asyncio.run(main())
    assert [r for _, r in responses] == ["a", "b"] and order == ["first", "second"]


def test_a_receiver_for_another_sender_is_not_called(signal: Signal) -> None:
    class A: ...

    class B: ...

    async def receiver(sender, **kwargs):
        raise AssertionError("called for the wrong sender")

    signal.connect(receiver, sender=A, weak=False)
    assert asyncio.run(asend_fast(signal, sender=B)) == []


def test_the_server_calls_a_receiver_connected_for_its_consumer_class() -> None:
    """A receiver connected with ``sender=BroadcastConsumer`` is called (``has_listeners()`` missed it)."""
    from django_broadcasting import signals
    from django_broadcasting.server.consumers import BroadcastConsumer

    calls = []

    async def receiver(sender, **kwargs):
        calls.append((sender, kwargs["channel"]))

    signals.subscribed.connect(receiver, sender=BroadcastConsumer, weak=False)
    try:
        assert signals.subscribed.receivers  # the server's guard
        asyncio.run(asend_fast(signals.subscribed, sender=BroadcastConsumer, socket_id="1.1", channel="c"))
    finally:
        signals.subscribed.disconnect(receiver, sender=BroadcastConsumer)
    assert calls == [(BroadcastConsumer, "c")]
