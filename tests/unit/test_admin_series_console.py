"""The admin's figures over time (``server/series.py``) and the console recorder (``server/console.py``)."""

from __future__ import annotations

from django_broadcasting.context import broadcast_origin
from django_broadcasting.messages import Message
from django_broadcasting.server.console import ConsoleRecorder
from django_broadcasting.server.hub import Hub
from django_broadcasting.server.series import SeriesRing, charts


def test_ring_keeps_the_last_points_and_adds_the_current_one():
    ring = SeriesRing(step=5, size=3)
    for t in range(5):
        ring.add([float(t * 5), 1, t * 10, t * 20, 0, 0])
    export = ring.export([21.0, 2, 45, 90, 0, 0])
    assert [p[0] for p in export["points"]] == [10.0, 15.0, 20.0, 21.0]
    assert len(ring.points) == 3  # the current sample is not kept


def test_charts_rates_totals_and_nodes():
    a = {"step": 5, "points": [[100.0, 1, 0, 0, 0, 0], [105.0, 2, 10, 20, 5, 1]]}
    b = {"step": 5, "points": [[101.0, 3, 0, 0, 0, 0], [106.0, 3, 5, 5, 0, 0]]}
    data = {c["key"]: c for c in charts([("a", a), ("b", b)], now=107.0)["charts"]}
    assert data["broadcasts"]["nodes"]["a"] == [[105.0, 2.0]]
    assert data["broadcasts"]["total"] == [[106.0, 3.0]]  # both nodes in the same step
    assert data["connections"]["total"][-1][1] == 5.0
    assert data["errors"]["nodes"]["a"] == [[105.0, 0.2]]
    # Outside the window: nothing.
    assert charts([("a", a)], now=2000.0)["charts"][0]["total"] == []


def test_recorder_is_bounded_and_counts_unread_drops():
    recorder = ConsoleRecorder("n1", size=3)
    for n in range(5):
        recorder.member("member_added", "presence.x", str(n))
    assert [e["user"] for e in recorder.events] == ["2", "3", "4"]
    assert recorder.dropped == 2
    assert [e["seq"] for e in recorder.read(after=3)] == [4, 5]


def test_hub_records_only_while_watched():
    hub = Hub()
    message = Message("general", "test", {"a": 1})
    hub.deliver(message)
    assert hub.console is None and hub.recorder.seq == 0  # nobody watches: nothing recorded
    hub.console_watch(10)
    with broadcast_origin("cli"):
        from django_broadcasting.broadcasting import _label

        labelled = [Message("general", "test", {"b": 2})]
        _label(labelled)
    hub.deliver(labelled[0])
    events = hub.console_read(0)["events"]
    assert [(e["type"], e["origin"], e["recipients"], e["size"]) for e in events] == [
        ("broadcast", "cli", 0, 7)
    ]
    hub.recorder.until = 0  # the watch expired
    hub.deliver(message)
    assert hub.console is None and hub.recorder.seq == 1


def test_origin_travels_in_the_transport():
    message = Message("general", "test", {})
    message.origin = "cli"
    assert Message.from_transport(message.to_transport()).origin == "cli"
    assert Message.from_publisher(message.to_transport()).origin == "cli"
    assert "origin" not in Message("general", "test", {}).to_transport()
