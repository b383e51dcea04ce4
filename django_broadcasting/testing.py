"""Test helpers for projects that broadcast: ``EventFake`` / ``EventFacade``, ``BroadcastFake``, pytest fixtures.

This module is also a pytest plugin that a project enables itself, in its root ``conftest.py``::

    pytest_plugins = ["django_broadcasting.testing"]

Installing the package adds nothing to any test suite. The plugin only defines fixtures a test asks
for by name (``broadcast_fake``, ``event_fake``, ``broadcasting_isolation``); none is autouse. It
imports nothing from Django or django_broadcasting at module level: pytest loads it before settings
exist.

    def test_signup(event_fake):
        register("ada@example.com")
        event_fake.assert_dispatched("UserRegistered")

    def test_order_shipped(broadcast_fake):
        ship(order)
        broadcast_fake.assert_broadcast_on("orders.1", event="OrderShipped", count=1)

Both fakes work as context managers and with ``start()`` / ``stop()`` too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

try:
    import pytest
except ImportError:  # pragma: no cover - the helpers work without pytest
    pytest = None  # type: ignore[assignment]

__all__ = [
    "EventFake",
    "EventFacade",
    "BroadcastFake",
    "broadcast_fake",
    "event_fake",
    "broadcasting_isolation",
]


def _name_matches(event: Any, target: Any) -> bool:
    if isinstance(target, str):
        return target == type(event).__name__ or target == event.event_name()
    return isinstance(event, target)


def _describe(items: Iterable[str]) -> str:
    listed = list(items)
    return ", ".join(listed) if listed else "nothing"


class EventFake:
    """Record dispatched events instead of sending them to listeners (or broadcasting them).

    ``EventFake(["OrderShipped"])`` fakes only those events (classes or names); others are
    dispatched as usual.
    """

    def __init__(self, events: Iterable[Any] | None = None) -> None:
        self.only: list[Any] | None = list(events) if events is not None else None
        self.events: list[Any] = []
        self._active = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> EventFake:
        from django_broadcasting import events as events_module

        if not self._active:
            events_module._fakes.append(self)
            self._active = True
        return self

    def stop(self) -> None:
        from django_broadcasting import events as events_module

        if self._active:
            events_module._fakes.remove(self)
            self._active = False

    def __enter__(self) -> EventFake:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- called by Event.adispatch ----------------------------------------------------------------
    def intercepts(self, event: Any) -> bool:
        return self.only is None or any(_name_matches(event, target) for target in self.only)

    def record(self, event: Any) -> None:
        self.events.append(event)

    # -- inspection -------------------------------------------------------------------------------
    def dispatched(self, event: Any, callback: Callable[[Any], bool] | None = None) -> list[Any]:
        """Return the recorded events matching ``event`` (a class or name) and ``callback``."""
        return [e for e in self.events if _name_matches(e, event) and (callback is None or callback(e))]

    def has_dispatched(self, event: Any) -> bool:
        return bool(self.dispatched(event))

    def _names(self) -> Iterator[str]:
        return (e.event_name() for e in self.events)

    def assert_dispatched(
        self, event: Any, callback: Callable[[Any], bool] | None = None, times: int | None = None
    ) -> bool:
        """Fail unless ``event`` was dispatched (``times`` times, if given); return True."""
        found = len(self.dispatched(event, callback))
        label = event if isinstance(event, str) else event.__name__
        if times is None and not found:
            raise AssertionError(
                f"Event {label!r} was not dispatched; dispatched: {_describe(self._names())}."
            )
        if times is not None and found != times:
            raise AssertionError(f"Event {label!r} was dispatched {found} time(s), expected {times}.")
        return True

    def assert_dispatched_times(self, event: Any, times: int) -> bool:
        return self.assert_dispatched(event, times=times)

    def assert_not_dispatched(self, event: Any, callback: Callable[[Any], bool] | None = None) -> bool:
        """Fail if ``event`` was dispatched; return True."""
        if self.dispatched(event, callback):
            label = event if isinstance(event, str) else event.__name__
            raise AssertionError(f"Event {label!r} was dispatched but should not have been.")
        return True

    def assert_nothing_dispatched(self) -> bool:
        if self.events:
            raise AssertionError(f"Events were dispatched: {_describe(self._names())}.")
        return True


class EventFacade:
    """The ``EventFacade``: ``EventFacade.fake()`` then ``EventFacade.assert_dispatched(...)``."""

    _fake: EventFake | None = None

    @classmethod
    def fake(cls, events: Iterable[Any] | None = None) -> EventFake:
        """Replace event dispatching by a recording fake until ``restore()``; return the fake."""
        cls.restore()
        cls._fake = EventFake(events).start()
        return cls._fake

    @classmethod
    def restore(cls) -> None:
        """Stop faking events."""
        if cls._fake is not None:
            cls._fake.stop()
            cls._fake = None

    @classmethod
    def _current(cls) -> EventFake:
        if cls._fake is None:
            raise AssertionError("EventFacade.fake() has not been called.")
        return cls._fake

    @classmethod
    def dispatched(cls, event: Any, callback: Callable[[Any], bool] | None = None) -> list[Any]:
        return cls._current().dispatched(event, callback)

    @classmethod
    def assert_dispatched(
        cls, event: Any, callback: Callable[[Any], bool] | None = None, times: int | None = None
    ) -> bool:
        return cls._current().assert_dispatched(event, callback, times)

    @classmethod
    def assert_dispatched_times(cls, event: Any, times: int) -> bool:
        return cls._current().assert_dispatched(event, times=times)

    @classmethod
    def assert_not_dispatched(cls, event: Any, callback: Callable[[Any], bool] | None = None) -> bool:
        return cls._current().assert_not_dispatched(event, callback)

    @classmethod
    def assert_nothing_dispatched(cls) -> bool:
        return cls._current().assert_nothing_dispatched()


_fake_driver_class: type | None = None


def _fake_driver(alias: str, recorder: BroadcastFake) -> Any:
    global _fake_driver_class
    if _fake_driver_class is None:
        from django_broadcasting.drivers.base import BaseDriver

        class FakeDriver(BaseDriver):
            """Records messages on its ``BroadcastFake`` instead of delivering them."""

            name = "fake"
            recorder: BroadcastFake
            accepts_plaintext = True  # assertions see the data of encrypted channels' events

            async def abroadcast(self, messages: Any) -> None:
                self.recorder.messages.extend(messages)

        _fake_driver_class = FakeDriver
    driver = _fake_driver_class(alias)
    driver.recorder = recorder
    return driver


class BroadcastFake:
    """Swap every configured driver for a recording fake; ``messages`` holds what was broadcast.

    The drivers are swapped in the registry (``drivers.set``) and put back by ``stop()``; they
    are swapped in again if settings change meanwhile (``override_settings``). Queued broadcasts
    (``ShouldBroadcast``) are recorded when queued, whatever the task backend, and not queued:
    ``queued`` lists them as ``(backend, queue, message)``.
    """

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.queued: list[tuple[str, str, Any]] = []
        self._previous: dict[str, Any] = {}
        self._active = False

    def _install(self) -> None:
        from django_broadcasting.conf import broadcasting_settings
        from django_broadcasting.drivers import drivers

        for alias in broadcasting_settings.DRIVERS:
            old = drivers.set(alias, _fake_driver(alias, self))
            self._previous.setdefault(alias, old)

    def _reinstall(self) -> None:
        # Settings changed (the registry was just emptied): the drivers saved at start() may no
        # longer match the settings, so stop() lets the registry build fresh ones instead.
        self._reloaded = True
        self._install()

    def start(self) -> BroadcastFake:
        from django_broadcasting.conf import on_reload

        if not self._active:
            from django_broadcasting.tasks import queue_interceptors

            self._reloaded = False
            self._install()
            on_reload(self._reinstall)
            queue_interceptors.append(self._record_queued)
            self._active = True
        return self

    def _record_queued(self, messages: Any, driver: str | None, queue: str, backend: str) -> bool:
        self.messages.extend(messages)
        self.queued.extend((backend, queue, message) for message in messages)
        return True

    def stop(self) -> None:
        from django_broadcasting.conf import _reset_hooks
        from django_broadcasting.drivers import drivers

        if not self._active:
            return
        from django_broadcasting.tasks import queue_interceptors

        if self._record_queued in queue_interceptors:
            queue_interceptors.remove(self._record_queued)
        if self._reinstall in _reset_hooks:
            _reset_hooks.remove(self._reinstall)
        for alias, old in self._previous.items():
            drivers.set(alias, None if self._reloaded else old)
        self._previous.clear()
        self._active = False

    def __enter__(self) -> BroadcastFake:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- inspection -------------------------------------------------------------------------------
    def broadcasts(self, channel: str | None = None, event: str | None = None) -> list[Any]:
        """Return the recorded messages, optionally only those on ``channel`` / named ``event``."""
        return [
            m
            for m in self.messages
            if (channel is None or m.channel == channel) and (event is None or m.event == event)
        ]

    def _summary(self) -> str:
        where = {id(m): f" (queued on task backend {b!r}, queue {q!r})" for b, q, m in self.queued}
        return _describe(f"{m.event} on {m.channel}{where.get(id(m), '')}" for m in self.messages)

    def assert_broadcast_on(
        self, channel: str, event: str | None = None, count: int | None = None, data: Any = None
    ) -> bool:
        """Fail unless something (``event``; ``count`` times; with ``data``) was broadcast on ``channel``."""
        found = [m for m in self.broadcasts(channel, event) if data is None or m.data == data]
        what = f"{event!r} on {channel!r}" if event else f"anything on {channel!r}"
        if count is None and not found:
            raise AssertionError(f"Expected {what} to be broadcast; broadcast: {self._summary()}.")
        if count is not None and len(found) != count:
            raise AssertionError(
                f"Expected {what} {count} time(s), got {len(found)}; broadcast: {self._summary()}."
            )
        return True

    def assert_not_broadcast_on(self, channel: str, event: str | None = None) -> bool:
        if self.broadcasts(channel, event):
            raise AssertionError(
                f"Did not expect {event or 'anything'!r} on {channel!r}; broadcast: {self._summary()}."
            )
        return True

    def assert_broadcast(self, event: str, count: int | None = None) -> bool:
        """Fail unless ``event`` was broadcast (on any channel; ``count`` messages if given)."""
        found = self.broadcasts(event=event)
        if (count is None and not found) or (count is not None and len(found) != count):
            raise AssertionError(
                f"Expected {event!r} broadcast {count if count is not None else 'at least once'}"
                f" time(s), got {len(found)}; broadcast: {self._summary()}."
            )
        return True

    def assert_broadcast_count(self, count: int) -> bool:
        """Fail unless exactly ``count`` messages (one per channel) were broadcast."""
        if len(self.messages) != count:
            raise AssertionError(
                f"Expected {count} broadcast message(s), got {len(self.messages)}: {self._summary()}."
            )
        return True

    def assert_nothing_broadcast(self) -> bool:
        if self.messages:
            raise AssertionError(f"Expected nothing broadcast; broadcast: {self._summary()}.")
        return True


def _reset_between_tests() -> None:
    memory = sys.modules.get("django_broadcasting.drivers.memory")
    if memory is not None:
        memory.reset_outbox()
    EventFacade.restore()


if pytest is not None:

    @pytest.fixture
    def broadcast_fake() -> Iterator[BroadcastFake]:
        """A started ``BroadcastFake``, stopped after the test."""
        with BroadcastFake() as fake:
            yield fake

    @pytest.fixture
    def event_fake() -> Iterator[EventFake]:
        """``EventFacade.fake()`` for the test (``EventFacade.assert_*`` work too), restored after."""
        fake = EventFacade.fake()
        try:
            yield fake
        finally:
            EventFacade.restore()

    @pytest.fixture
    def broadcasting_isolation() -> Iterator[None]:
        """Empty the memory driver's outbox and drop a leaked ``EventFacade.fake()`` around the test.

        Opt-in: request it, or make it apply to every test of a suite with an autouse fixture in
        ``conftest.py`` that requests it.
        """
        _reset_between_tests()
        yield
        _reset_between_tests()
