"""Prometheus metrics of the broadcasting server, read at scrape time.

The hub only increments plain integers while it works; ``HubCollector`` turns
those counters and sizes (``hub_counts``: numbers only, no channel name or presence member is
copied) into metric families when Prometheus scrapes ``GET /metrics``, so the
metrics cost the hot path nothing. The one metric measured as it happens is
``broadcast_duration_seconds``: ``apublish`` (label ``source="publish"``) and the server's
HTTP trigger (``source="trigger"``, the fan-out of broadcasts other processes send) call
``observe_broadcast``, one histogram observation each: no signal, task or lock.

Both live in prometheus-client's default registry, next to its process and Python
collectors and any metric of the project, so one scrape gets everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

__all__ = ["HubCollector", "BROADCAST_DURATION", "observe_broadcast", "install", "registry"]

#: Buckets from 100 µs (an in-process fan-out) to 10 s (a stuck transport).
DURATION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

BROADCAST_DURATION = Histogram(
    "broadcast_duration_seconds",
    "Time spent broadcasting messages (publish call or server fan-out), per batch.",
    ["source"],
    buckets=DURATION_BUCKETS,
    registry=None,  # registered by install(), once
)


def hub_counts(hub: Any) -> dict[str, Any]:
    """Return the hub's figures as numbers only, for a scrape.

    ``hub.stats()`` also copies every channel name and the whole presence membership (member
    info included): fine for the staff-only stats API, too much for an endpoint that is open by
    default and scraped every few seconds. A scrape reads counters and sizes, never a name.
    """
    subscribers = getattr(hub, "subscribers", {})
    return {
        "node": getattr(hub, "node_id", ""),
        "transport": type(hub.transport).__name__ if getattr(hub, "transport", None) else None,
        "connections": len(getattr(hub, "connections", ())),
        "connections_total": getattr(hub, "connections_total", 0),
        "channels": len(subscribers),
        "subscriptions": sum(map(len, subscribers.values())),
        "presence_members": hub.presence.count() if getattr(hub, "presence", None) is not None else 0,
        "messages_in": getattr(hub, "messages_in", 0),
        "deliveries": getattr(hub, "deliveries", 0),
        "frames_in": getattr(hub, "frames_in", 0),
        "errors": dict(getattr(hub, "errors", {})),
        "apps": hub.app_stats() if hasattr(hub, "app_stats") else {},
        "uptime": round(time.time() - getattr(hub, "started_at", time.time()), 3),
        "webhooks": _webhook_counts(hub),
    }


def _webhook_counts(hub: Any) -> dict[str, int]:
    lifecycle = getattr(hub, "lifecycle", None)
    if lifecycle is None:
        return {}
    return {**lifecycle.stats.as_dict(), "pending": sum(s.pending for s in lifecycle.senders)}


class HubCollector(Collector):
    """Metric families built from the hub's counters (``hub_counts``) at collection time."""

    def collect(self) -> Iterator[Metric]:
        from .core.serving import hub_or_none

        stats = hub_counts(hub_or_none(load=True))

        info = InfoMetricFamily("broadcast_node", "The broadcasting node this process is.")
        info.add_metric(
            [], {"node": str(stats.get("node", "")), "transport": str(stats.get("transport") or "local")}
        )
        yield info
        yield GaugeMetricFamily(
            "broadcast_connections", "Open WebSocket connections.", value=stats.get("connections", 0)
        )
        yield CounterMetricFamily(
            "websocket_connections",
            "WebSocket connections accepted since the process started.",
            value=stats.get("connections_total", 0),
        )
        yield GaugeMetricFamily(
            "broadcast_channels", "Channels with at least one local subscriber.", value=stats["channels"]
        )
        yield GaugeMetricFamily(
            "broadcast_subscriptions",
            "Channel subscriptions of open connections.",
            value=stats["subscriptions"],
        )
        yield GaugeMetricFamily(
            "broadcast_presence_members",
            "Members of presence channels.",
            value=stats.get("presence_members", 0),
        )
        yield CounterMetricFamily(
            "broadcast_messages_in",
            "Broadcast messages this process received for fan-out.",
            value=stats.get("messages_in", 0),
        )
        yield CounterMetricFamily(
            "broadcast_messages_out",
            "Frames delivered to subscribers by fan-out.",
            value=stats.get("deliveries", 0),
        )
        yield CounterMetricFamily(
            "broadcast_frames_in", "Frames received from clients.", value=stats.get("frames_in", 0)
        )
        errors = CounterMetricFamily(
            "broadcast_errors", "Error frames and close codes sent to clients, by code.", labels=["code"]
        )
        for code, count in sorted(stats.get("errors", {}).items(), key=lambda item: str(item[0])):
            errors.add_metric([str(code)], count)
        yield errors
        yield from _webhook_metrics(stats.get("webhooks") or {})
        yield from _app_families(stats.get("apps") or {})
        yield GaugeMetricFamily(
            "broadcast_uptime_seconds",
            "Seconds since this broadcasting node started.",
            value=stats.get("uptime", 0.0),
        )


def _webhook_metrics(counts: dict[str, int]) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "broadcast_webhook_events_pending",
        "Webhook events queued or in flight (every URL).",
        value=counts.get("pending", 0),
    )
    events = CounterMetricFamily(
        "broadcast_webhook_events",
        "Webhook events by outcome: queued, sent (answered 2xx), dropped (queue full or retries exhausted).",
        labels=["outcome"],
    )
    for outcome in ("queued", "sent", "dropped"):
        events.add_metric([outcome], counts.get(f"events_{outcome}", 0))
    yield events
    requests = CounterMetricFamily(
        "broadcast_webhook_requests",
        "Webhook requests by result (failed: non-2xx or no answer).",
        labels=["result"],
    )
    requests.add_metric(["ok"], counts.get("requests_ok", 0))
    requests.add_metric(["failed"], counts.get("requests_failed", 0))
    yield requests


#: Per-app metrics (label ``app``: the app id of ``PUSHER_APPS``, or of the single app).
_APP_METRICS = (
    ("broadcast_app_connections", GaugeMetricFamily, "connections", "Open WebSocket connections, per app."),
    ("broadcast_app_channels", GaugeMetricFamily, "channels", "Channels with a local subscriber, per app."),
    ("broadcast_app_subscriptions", GaugeMetricFamily, "subscriptions", "Channel subscriptions, per app."),
    (
        "broadcast_app_messages_in",
        CounterMetricFamily,
        "messages_in",
        "Broadcasts received for fan-out, per app.",
    ),
    (
        "broadcast_app_messages_out",
        CounterMetricFamily,
        "deliveries",
        "Frames delivered by fan-out, per app.",
    ),
)


def _app_families(apps: dict[str, dict[str, int]]) -> Iterator[Metric]:
    for name, family_class, field, documentation in _APP_METRICS:
        family = family_class(name, documentation, labels=["app"])
        for app_id, figures in sorted(apps.items()):
            family.add_metric([str(app_id)], figures.get(field, 0))
        yield family


_children: dict[str, Any] = {}


def observe_broadcast(seconds: float, source: str = "publish") -> None:
    """Record one broadcast batch that took ``seconds`` (cheap: one histogram observation)."""
    child = _children.get(source)
    if child is None:
        # labels() takes a lock and builds a key: resolve each source's child once.
        child = _children[source] = BROADCAST_DURATION.labels(source)
    child.observe(seconds)


_installed: set[int] = set()
_lock = threading.Lock()


def install(target: CollectorRegistry = REGISTRY) -> CollectorRegistry:
    """Register the hub collector and the duration histogram in ``target`` (idempotent)."""
    with _lock:
        if id(target) not in _installed:
            target.register(HubCollector())
            target.register(BROADCAST_DURATION)
            _installed.add(id(target))
    return target


def registry() -> CollectorRegistry:
    """The registry ``GET /metrics`` serves (prometheus-client's default, with ours in it)."""
    return install(REGISTRY)
