"""The stats document's arithmetic without a server: rates, merging nodes, the stats URL."""

from __future__ import annotations

import pytest

from django_broadcasting.http.stats import RateWindow, summarize
from django_broadcasting.http.stats_client import stats_url


def test_rates_are_lifetime_averages_until_a_sample_is_old_enough():
    window = RateWindow(min_age=1.0)
    first = window.rates({"messages_in": 100, "deliveries": 300, "frames_in": 0}, uptime=10.0, now=1000.0)
    assert first["messages_in"] == 10.0 and first["deliveries"] == 30.0 and first["window"] == 10.0
    # 0.5 s later: no sample is 1 s old yet, still the lifetime average.
    assert (
        window.rates({"messages_in": 101, "deliveries": 303, "frames_in": 0}, 10.5, now=1000.5)["window"]
        == 10.5
    )
    later = window.rates({"messages_in": 120, "deliveries": 360, "frames_in": 4}, uptime=12.0, now=1002.0)
    assert later["window"] == pytest.approx(1.5)  # against the newest sample at least 1 s old (t=1000.5)
    assert later["messages_in"] == pytest.approx(19 / 1.5, rel=1e-3)
    assert later["frames_in"] == pytest.approx(4 / 1.5, rel=1e-3)


def test_rates_never_go_negative_after_a_counter_reset():
    window = RateWindow(min_age=1.0)
    window.rates({"messages_in": 50, "deliveries": 0, "frames_in": 0}, 5.0, now=10.0)
    assert (
        window.rates({"messages_in": 0, "deliveries": 0, "frames_in": 0}, 1.0, now=12.0)["messages_in"] == 0
    )


def test_old_samples_are_dropped():
    window = RateWindow(min_age=1.0, max_age=5.0)
    for t in range(20):
        window.rates({"messages_in": t, "deliveries": 0, "frames_in": 0}, float(t), now=float(t))
    assert len(window._samples) <= 6


def node(name, connections, channels, presence=None, **extra):
    return {
        "node": name, "connections": connections, "connections_total": connections, "channels": channels,
        "presence": presence or {}, "presence_members": sum(len(m) for m in (presence or {}).values()),
        "messages_in": 10, "deliveries": 20, "frames_in": 1, "errors": extra.pop("errors", {}),
        "rates": {"messages_in": 1.0, "deliveries": 2.0, "frames_in": 0.5}, **extra,
    }  # fmt: skip


def test_summarize_merges_channels_presence_errors_and_rates_across_nodes():
    member = {"id": "7", "info": {"name": "Seven"}}
    nodes = [
        node("a", 2, {"general": 2}, {"presence.chat.1": [member]}, errors={"4003": 1}),
        node("b", 3, {"general": 1, "admin": 2}, {"presence.chat.1": [member, {"id": "8", "info": {}}]},
             errors={"4003": 2, "4010": 1}),
    ]  # fmt: skip
    document = summarize(nodes)
    assert document["connections"] == 5
    assert document["channels"] == {"admin": 2, "general": 3}
    # User 7 is on both nodes: one member.
    assert [m["id"] for m in document["presence"]["presence.chat.1"]] == ["7", "8"]
    assert document["presence_members"] == 2
    totals = document["totals"]
    assert totals["nodes"] == 2 and totals["channels"] == 2 and totals["subscriptions"] == 5
    assert totals["messages_in"] == 20 and totals["deliveries"] == 40
    assert totals["errors"] == {"4003": 3, "4010": 1}
    assert document["rates"] == {"messages_in": 2.0, "deliveries": 4.0, "frames_in": 1.0}
    assert document["nodes"] is nodes


def test_summarize_of_no_nodes_is_all_zero():
    document = summarize([])
    assert document["connections"] == 0 and document["channels"] == {} and document["totals"]["nodes"] == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://10.0.0.5:9000", "http://10.0.0.5:9000/api/broadcast/stats"),
        ("10.0.0.5:9000", "http://10.0.0.5:9000/api/broadcast/stats"),
        ("https://rt.example.com/prefix/", "https://rt.example.com/prefix/api/broadcast/stats"),
        ("http://h:1/api/broadcast/stats", "http://h:1/api/broadcast/stats"),
    ],
)
def test_stats_url_from_an_address(given, expected):
    assert stats_url(given) == expected


def test_stats_url_defaults_next_to_the_trigger(settings):
    settings.BROADCASTING = {"WEBSOCKET_HOST": "0.0.0.0", "WEBSOCKET_PORT": 9123}
    assert stats_url() == "http://127.0.0.1:9123/api/broadcast/stats"
    settings.BROADCASTING = {"TRIGGER_URL": "https://rt.example.com/x/api/broadcast/events"}
    assert stats_url() == "https://rt.example.com/x/api/broadcast/stats"
