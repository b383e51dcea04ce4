"""A ``/metrics`` scrape reads counters and sizes only: no channel name, no presence membership copied."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from django_broadcasting.metrics import HubCollector, hub_counts
from django_broadcasting.server.hub import Hub


@pytest.fixture
def hub(monkeypatch):
    hub = Hub()
    monkeypatch.setattr("django_broadcasting.server.hub._hub", hub)
    return hub


async def test_scrape_counts_without_building_the_presence_snapshot(hub, monkeypatch):
    for n in range(50):
        await hub.presence.join(f"presence.room.{n % 5}", str(n), {"name": "x" * 100}, f"1.{n}")
    hub.subscribers.update({f"room.{n}": {object(), object()} for n in range(10)})

    def snapshot():  # what every anonymous scrape used to build
        raise AssertionError("a scrape must not copy the presence membership")

    monkeypatch.setattr(hub.presence, "snapshot", snapshot)
    monkeypatch.setattr(hub, "stats", lambda: pytest.fail("a scrape must not call hub.stats()"))
    counts = hub_counts(hub)
    assert counts["presence_members"] == 50 and counts["channels"] == 10 and counts["subscriptions"] == 20
    registry = CollectorRegistry()
    registry.register(HubCollector())
    text = generate_latest(registry).decode()
    assert "broadcast_presence_members 50.0" in text and "broadcast_subscriptions 20.0" in text
    assert "room." not in text  # no channel name leaks into the exposition
