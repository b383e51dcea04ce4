"""Events: dispatch/adispatch, listeners, ShouldBroadcast / ShouldBroadcastNow, queueing, after-commit."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import transaction

from django_broadcasting.drivers import memory
from django_broadcasting.events import Event, ShouldBroadcast, ShouldBroadcastNow, listen, unlisten
from django_broadcasting.exceptions import (
    BroadcastingImproperlyConfigured,
    InvalidChannelName,
    InvalidDriver,
    InvalidMessage,
)
from django_broadcasting.signals import broadcast_sent, event_dispatched


def tasks_signals():
    """The signals of the tasks framework the product uses: django.tasks (Django 6) or the backport."""
    try:
        from django.tasks import signals
    except ImportError:
        from django_tasks import signals
    return signals


@dataclass
class UserRegistered(Event):
    user_id: int
    email: str


@dataclass
class OrderShipped(Event, ShouldBroadcast):
    order_id: int

    def broadcast_on(self):
        return [f"orders.{self.order_id}", "orders"]


class Ping(ShouldBroadcastNow):
    def __init__(self, n, channel="general"):
        self.n = n
        self.channel = channel

    def broadcast_on(self):
        return self.channel

    def broadcast_as(self):
        return "ping"

    def broadcast_with(self):
        return {"n": self.n}

    def broadcast_when(self):
        return self.n >= 0


@pytest.fixture(autouse=True)
def memory_driver(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    memory.reset_outbox()
    yield memory.outbox


def test_event_name_and_to_json():
    event = UserRegistered(1, "a@example.com")
    assert event.event_name() == "UserRegistered"
    assert event.to_json() == {"user_id": 1, "email": "a@example.com"}


def test_plain_event_keyword_init_and_private_attributes_are_not_data():
    class Thing(Event):
        pass

    thing = Thing(a=1, b="x")
    thing._secret = 1
    assert thing.to_json() == {"a": 1, "b": "x"}


def test_dispatch_sends_event_dispatched_and_calls_class_listeners():
    received = []

    @listen(UserRegistered)
    def on_registered(event):
        received.append(event)

    try:
        event = UserRegistered(1, "a@example.com")
        event.dispatch()
        assert received == [event]
        OrderShipped(3).dispatch()  # not a UserRegistered: this listener is not called
        assert received == [event]
    finally:
        assert unlisten(on_registered)
    UserRegistered(2, "b@example.com").dispatch()
    assert len(received) == 1


def test_listen_by_name_and_to_all_events():
    by_name, everything = [], []

    @listen("UserRegistered")
    def named(event):
        by_name.append(event.event_name())

    @listen()
    def all_events(event):
        everything.append(event.event_name())

    try:
        UserRegistered(1, "x").dispatch()
        OrderShipped(1).dispatch()
    finally:
        unlisten(named)
        unlisten(all_events)
    assert by_name == ["UserRegistered"]
    assert everything == ["UserRegistered", "OrderShipped"]


def test_listen_rejects_a_bare_decorator():
    with pytest.raises(TypeError, match="listen"):
        listen(lambda event: None)


async def test_adispatch_runs_async_and_sync_listeners():
    seen = []

    @listen(UserRegistered)
    async def async_listener(event):
        seen.append(("async", event.user_id))

    @listen(UserRegistered)
    def sync_listener(event):
        seen.append(("sync", event.user_id))

    try:
        await UserRegistered(7, "x").adispatch()
    finally:
        unlisten(async_listener)
        unlisten(sync_listener)
    assert sorted(seen) == [("async", 7), ("sync", 7)]


def test_should_broadcast_publishes_on_every_channel(memory_driver):
    OrderShipped(5).dispatch()
    assert [(m.channel, m.event, m.data) for m in memory_driver] == [
        ("orders.5", "OrderShipped", {"order_id": 5}),
        ("orders", "OrderShipped", {"order_id": 5}),
    ]


def test_plain_events_are_not_broadcast(memory_driver):
    UserRegistered(1, "x").dispatch()
    assert memory_driver == []


def test_broadcast_as_with_when(memory_driver):
    Ping(1).dispatch()
    Ping(-1).dispatch()  # broadcast_when() is False
    assert [(m.channel, m.event, m.data) for m in memory_driver] == [("general", "ping", {"n": 1})]


async def test_adispatch_broadcasts(memory_driver):
    await Ping(2).adispatch()
    assert memory_driver[0].data == {"n": 2}


def test_broadcast_sent_signal_carries_the_messages():
    sent = []

    def receiver(sender, driver, messages, **kwargs):
        sent.append((driver.driver_name(), [m.channel for m in messages]))

    broadcast_sent.connect(receiver)
    try:
        Ping(1).dispatch()
    finally:
        broadcast_sent.disconnect(receiver)
    assert sent == [("memory", ["general"])]


def test_event_dispatched_signal_is_public():
    got = []

    def receiver(sender, event, **kwargs):
        got.append((sender, event))

    event_dispatched.connect(receiver)
    try:
        event = UserRegistered(1, "x")
        event.dispatch()
    finally:
        event_dispatched.disconnect(receiver)
    assert got == [(UserRegistered, event)]


def test_bad_data_fails_dispatch_and_sends_nothing(memory_driver):
    class Bad(ShouldBroadcastNow):
        def broadcast_on(self):
            return ["a", "b"]

        def broadcast_with(self):
            return {"ok": 1, "when": object()}

    with pytest.raises(InvalidMessage, match="when"):
        Bad().dispatch()
    assert memory_driver == []


def test_bad_channel_fails_dispatch(memory_driver):
    with pytest.raises(InvalidChannelName):
        Ping(1, channel="not allowed!").dispatch()
    assert memory_driver == []


def test_missing_broadcast_on_is_reported():
    class NoChannels(Event, ShouldBroadcast):
        pass

    with pytest.raises(NotImplementedError, match="broadcast_on"):
        NoChannels().dispatch()


def test_unknown_driver_fails_dispatch(memory_driver):
    class Elsewhere(Ping):
        broadcast_driver = "nowhere"

    with pytest.raises(InvalidDriver, match="nowhere"):
        Elsewhere(1).dispatch()
    assert memory_driver == []


def test_broadcast_driver_choice(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "null"}

    class ToMemory(Ping):
        broadcast_driver = "memory"

    ToMemory(1).dispatch()
    Ping(2).dispatch()  # default: null
    assert [m.data for m in memory.outbox] == [{"n": 1}]


def test_queued_broadcast_runs_through_the_tasks_framework(memory_driver):
    task_finished = tasks_signals().task_finished

    finished = []

    def on_finished(sender, task_result, **kwargs):
        finished.append(task_result)

    task_finished.connect(on_finished)
    try:
        OrderShipped(9).dispatch()
    finally:
        task_finished.disconnect(on_finished)
    assert len(finished) == 1
    result = finished[0]
    assert result.task.name == "broadcast_messages"
    assert result.status == "SUCCESSFUL" and result.return_value == 2
    assert [m.channel for m in memory_driver] == ["orders.9", "orders"]


def test_broadcast_now_is_not_queued(memory_driver):
    task_enqueued = tasks_signals().task_enqueued

    enqueued = []
    task_enqueued.connect(
        lambda sender, task_result, **kw: enqueued.append(task_result),
        weak=False,
        dispatch_uid="test_broadcast_now",
    )
    try:
        Ping(1).dispatch()
    finally:
        task_enqueued.disconnect(dispatch_uid="test_broadcast_now")
    assert enqueued == [] and len(memory_driver) == 1


def test_unknown_task_queue_is_improperly_configured(memory_driver):
    class Queued(OrderShipped):
        broadcast_queue = "no-such-queue"

    with pytest.raises(BroadcastingImproperlyConfigured, match="no-such-queue"):
        Queued(1).dispatch()
    assert memory_driver == []


def test_queued_broadcast_retries_transport_errors(settings):
    calls = []
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "flaky",
        "DRIVERS": {"flaky": {"BACKEND": f"{__name__}.FlakyDriver"}},
    }
    FlakyDriver.failures = 2
    FlakyDriver.calls = calls

    class Retried(OrderShipped):
        tries = 3

    Retried(1).dispatch()
    assert len(calls) == 3  # two failures, then success
    assert FlakyDriver.delivered[-1].channel == "orders"

    calls.clear()
    FlakyDriver.failures = 5

    class GivesUp(OrderShipped):
        tries = 2

    GivesUp(1).dispatch()  # the task fails (recorded by the task backend), dispatch does not raise
    assert len(calls) == 2


from django_broadcasting.drivers.base import BaseDriver  # noqa: E402
from django_broadcasting.exceptions import TransportError  # noqa: E402


class FlakyDriver(BaseDriver):
    name = "flaky"
    failures = 0
    calls: list = []
    delivered: list = []

    async def abroadcast(self, messages):
        FlakyDriver.calls.append(1)
        if FlakyDriver.failures > 0:
            FlakyDriver.failures -= 1
            raise TransportError("down")
        FlakyDriver.delivered.extend(messages)


@pytest.mark.django_db(transaction=True)
def test_after_commit_waits_for_the_transaction(memory_driver):
    class AfterCommit(Ping):
        after_commit = True

    with transaction.atomic():
        AfterCommit(1).dispatch()
        assert memory_driver == []
    assert [m.data for m in memory_driver] == [{"n": 1}]

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            AfterCommit(2).dispatch()
            raise RuntimeError("rollback")
    assert [m.data for m in memory_driver] == [{"n": 1}]  # rolled back: never sent


def test_to_others_excludes_the_given_socket(memory_driver):
    Ping(1).to_others("123.456").dispatch()
    assert memory_driver[0].socket_id == "123.456"


def test_to_others_uses_the_current_request_socket_id(memory_driver):
    from django_broadcasting.context import socket_id_context

    with socket_id_context("42.1"):
        Ping(1).to_others().dispatch()
    Ping(2).to_others().dispatch()  # no current socket id: nobody excluded
    assert [m.socket_id for m in memory_driver] == ["42.1", None]


def test_event_accepts_channel_objects_with_a_name(memory_driver):
    class Named:
        def __init__(self, name):
            self.name = name

    class WithObjects(Ping):
        def broadcast_on(self):
            return [Named("team.1"), "team.2"]

    WithObjects(1).dispatch()
    assert [m.channel for m in memory_driver] == ["team.1", "team.2"]


def test_laravel_channel_objects_and_prefixes_are_canonical(memory_driver):
    from django_broadcasting.broadcasting import broadcast
    from django_broadcasting.events import Channel, PresenceChannel, PrivateChannel

    class Mixed(Ping):
        def broadcast_on(self):
            return [Channel("news"), PrivateChannel("orders.1"), PresenceChannel("chat.1")]

    Mixed(1).dispatch()
    broadcast().channels(["private-user.5", "presence-room.2", "presence.room.3"]).event("e").send()
    assert [m.channel for m in memory_driver] == [
        "news",
        "orders.1",
        "presence.chat.1",
        "user.5",
        "presence.room.2",
        "presence.room.3",
    ]
    assert PrivateChannel("orders.1").name == "private-orders.1"
    assert PrivateChannel("a") == PrivateChannel("a") and str(PresenceChannel("x")) == "presence-x"


@pytest.mark.parametrize("name", ["private-", "presence-", "presence."])
def test_prefix_without_a_name_is_invalid(name, memory_driver):
    from django_broadcasting.broadcasting import broadcast

    with pytest.raises(InvalidChannelName):
        broadcast().channel(name).event("e").send()
    assert memory_driver == []


class HangingDriver(BaseDriver):
    name = "hanging"
    attempts = 0

    async def abroadcast(self, messages):
        import asyncio

        HangingDriver.attempts += 1
        await asyncio.Event().wait()  # never set: only the timeout ends it


def test_queued_broadcast_timeout_fails_the_task(settings):
    task_finished = tasks_signals().task_finished

    settings.BROADCASTING = {"DRIVERS": {"hanging": {"BACKEND": f"{__name__}.HangingDriver"}}}
    HangingDriver.attempts = 0
    finished = []
    task_finished.connect(
        lambda sender, task_result, **kw: finished.append(task_result),
        weak=False,
        dispatch_uid="test_timeout",
    )

    class Slow(OrderShipped):
        broadcast_driver = "hanging"
        timeout = 0.05
        tries = 2

    try:
        Slow(1).dispatch()
    finally:
        task_finished.disconnect(dispatch_uid="test_timeout")
    assert HangingDriver.attempts == 2
    assert finished[0].status == "FAILED"


def test_broadcast_now_transport_errors_raise_from_dispatch(settings):
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "flaky",
        "DRIVERS": {"flaky": {"BACKEND": f"{__name__}.FlakyDriver"}},
    }
    FlakyDriver.failures = 1
    FlakyDriver.calls = []
    with pytest.raises(TransportError, match="down"):
        Ping(1).dispatch()


@pytest.mark.django_db(transaction=True)
def test_unknown_task_queue_fails_at_dispatch_even_after_commit(memory_driver):
    class QueuedAfterCommit(OrderShipped):
        broadcast_queue = "no-such-queue"
        after_commit = True

    with transaction.atomic():
        with pytest.raises(BroadcastingImproperlyConfigured, match="no-such-queue"):
            QueuedAfterCommit(1).dispatch()
    assert memory_driver == []


async def test_adispatch_of_a_queued_event(memory_driver):
    await OrderShipped(4).adispatch()
    assert [m.channel for m in memory_driver] == ["orders.4", "orders"]
