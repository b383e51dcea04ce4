"""The test fakes shipped to users: EventFake / EventFacade, BroadcastFake, and the pytest plugin fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.test import override_settings

from django_broadcasting import broadcasting as b
from django_broadcasting.drivers import drivers, memory
from django_broadcasting.events import Event, ShouldBroadcastNow, listen, unlisten
from django_broadcasting.testing import BroadcastFake, EventFacade, EventFake

ROOT = Path(__file__).resolve().parents[2]


class UserRegistered(Event):
    def __init__(self, user_id):
        self.user_id = user_id


class OrderShipped(ShouldBroadcastNow):
    def __init__(self, order_id):
        self.order_id = order_id

    def broadcast_on(self):
        return f"orders.{self.order_id}"


@pytest.fixture(autouse=True)
def memory_default(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}


def test_event_facade_facade_style():
    EventFacade.fake()
    UserRegistered("test_user").dispatch()
    assert EventFacade.assert_dispatched("UserRegistered")
    assert EventFacade.assert_dispatched(UserRegistered, lambda e: e.user_id == "test_user")
    assert EventFacade.assert_not_dispatched("OrderShipped")
    with pytest.raises(AssertionError, match="OrderShipped"):
        EventFacade.assert_dispatched("OrderShipped")
    EventFacade.restore()
    with pytest.raises(AssertionError, match="fake"):
        EventFacade.assert_dispatched("UserRegistered")


def test_faked_events_reach_no_listener_and_are_not_broadcast():
    called = []

    @listen(UserRegistered)
    def listener(event):
        called.append(event)

    try:
        with EventFake() as fake:
            UserRegistered(1).dispatch()
            OrderShipped(1).dispatch()
        assert called == [] and memory.outbox == []
        fake.assert_dispatched_times("UserRegistered", 1)
        fake.assert_dispatched(OrderShipped)
        assert [e.order_id for e in fake.dispatched(OrderShipped)] == [1]
        UserRegistered(2).dispatch()  # after the fake: listeners run again
        assert len(called) == 1
    finally:
        unlisten(listener)


def test_fake_only_some_events():
    with EventFake(["UserRegistered"]) as fake:
        UserRegistered(1).dispatch()
        OrderShipped(5).dispatch()  # not faked: broadcast as usual
    fake.assert_dispatched("UserRegistered")
    fake.assert_not_dispatched("OrderShipped")
    assert [m.channel for m in memory.outbox] == ["orders.5"]


def test_event_fake_failures_are_readable():
    with EventFake() as fake:
        fake.assert_nothing_dispatched()
        UserRegistered(1).dispatch()
    with pytest.raises(AssertionError, match="dispatched 1 time"):
        fake.assert_dispatched("UserRegistered", times=2)
    with pytest.raises(AssertionError, match="should not"):
        fake.assert_not_dispatched("UserRegistered")
    with pytest.raises(AssertionError, match="UserRegistered"):
        fake.assert_nothing_dispatched()


async def test_event_fake_with_adispatch():
    with EventFake() as fake:
        await UserRegistered(1).adispatch()
    fake.assert_dispatched("UserRegistered")


def test_broadcast_fake_records_instead_of_sending():
    with BroadcastFake() as fake:
        b.broadcast_to_user(5, "notification", {"title": "x"})
        OrderShipped(1).dispatch()
        b.broadcast().channel("general").event("e").via("null").send()  # every alias is faked
    assert memory.outbox == []
    fake.assert_broadcast_on("user.5")
    fake.assert_broadcast_on("user.5", event="notification", count=1)
    fake.assert_broadcast_on("user.5", data={"title": "x"})
    fake.assert_broadcast_on("orders.1", event="OrderShipped")
    fake.assert_broadcast("e", count=1)
    fake.assert_broadcast_count(3)
    fake.assert_not_broadcast_on("admin")
    with pytest.raises(AssertionError, match="'other' on 'user.5'"):
        fake.assert_broadcast_on("user.5", event="other")
    with pytest.raises(AssertionError, match="2 time"):
        fake.assert_broadcast_on("user.5", count=2)
    with pytest.raises(AssertionError, match="nothing"):
        fake.assert_nothing_broadcast()
    with pytest.raises(AssertionError):
        fake.assert_broadcast_count(1)


def test_broadcast_fake_restores_the_previous_drivers():
    real = drivers["memory"]
    with BroadcastFake():
        assert drivers["memory"] is not real
    assert drivers["memory"] is real
    b.broadcast_to_channel("general", "e")
    assert len(memory.outbox) == 1


def test_broadcast_fake_survives_settings_changes():
    with BroadcastFake() as fake:
        with override_settings(BROADCASTING={"DEFAULT_DRIVER": "log"}):
            b.broadcast_to_channel("general", "e")
    fake.assert_broadcast_on("general", count=1)


def test_broadcast_fake_still_rejects_bad_input():
    from django_broadcasting.exceptions import InvalidDriver, InvalidMessage

    with BroadcastFake() as fake:
        with pytest.raises(InvalidMessage):
            b.broadcast_to_channel("general", "e", {"x": object()})
        with pytest.raises(InvalidDriver):
            b.broadcast_to_channel("general", "e", driver="unknown")
    fake.assert_nothing_broadcast()


def test_fixtures_from_the_plugin(broadcast_fake, event_fake):
    UserRegistered(1).dispatch()
    event_fake.assert_dispatched("UserRegistered")
    EventFacade.assert_dispatched("UserRegistered")
    b.notify_user(1, "t", "m")
    broadcast_fake.assert_broadcast_on("user.1", event="notification")


def _user_suite(tmp_path, conftest: str | None) -> subprocess.CompletedProcess:
    """Run ``pytest --fixtures`` and one test in a user's project dir (not this repository)."""
    if conftest is not None:
        (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "test_user_project.py").write_text(
        textwrap.dedent("""
        def test_no_fixture_of_ours_is_forced_on_the_test(request):
            ours = {"broadcast_fake", "event_fake", "broadcasting_isolation"}
            assert not ours & set(request.fixturenames), request.fixturenames
        """)
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--fixtures", "-rA", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_broadcast_fake_stopped_inside_override_settings_leaves_fresh_drivers():
    with override_settings(BROADCASTING={"DEFAULT_DRIVER": "null"}):
        fake = BroadcastFake().start()
        with override_settings(BROADCASTING={"DEFAULT_DRIVER": "memory"}):
            b.broadcast_to_channel("general", "faked")
            fake.stop()
            b.broadcast_to_channel("general", "real")  # a fresh memory driver, not a stale instance
            assert type(drivers["memory"]).__name__ == "MemoryDriver"
    fake.assert_broadcast_on("general", event="faked", count=1)
    assert [m.event for m in memory.outbox] == ["real"]
