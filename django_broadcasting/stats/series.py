"""Figures over time for the admin's charts: a bounded ring of samples per server process.

Every ``SERIES_STEP`` seconds the hub samples its counters (connections, broadcasts in,
deliveries, client frames, errors) into a ring of ``SERIES_POINTS`` samples: the last
15 minutes. ``export()`` adds the sample of this instant, so a chart moves at every poll,
not only every step. With the redis backend each node's export rides in the report it stores
on every heartbeat (``backends/redis/presence.py``), so any process can draw every node.

``charts(nodes)`` turns the exports of one or more nodes into what the page draws: one time
axis, and per figure the total and each node's values (rates per second are derived from
successive counter samples; connections are drawn as they are).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SERIES_STEP", "SERIES_POINTS", "SERIES_FIELDS", "CHARTS", "SeriesRing", "charts"]

SERIES_STEP = 5.0
SERIES_POINTS = 180  # 15 minutes
#: Sample layout: time, then the hub figures in this order.
SERIES_FIELDS = ("t", "connections", "messages_in", "deliveries", "frames_in", "errors")
#: The charts: key, title, the sample field, whether it is a counter (drawn as a rate).
CHARTS = (
    ("connections", "Connections", "connections", False),
    ("broadcasts", "Broadcasts/s", "messages_in", True),
    ("deliveries", "Deliveries/s", "deliveries", True),
    ("frames", "Client frames/s", "frames_in", True),
    ("errors", "Errors/s", "errors", True),
)


def sample_of(stats: Mapping[str, Any], now: float | None = None) -> list[float]:
    """One sample from a hub's figures (``hub.stats()`` or the hub itself, see ``Hub.sample``)."""
    errors = stats.get("errors") or {}
    return [
        round(time.time() if now is None else now, 3),
        int(stats.get("connections") or 0),
        int(stats.get("messages_in") or 0),
        int(stats.get("deliveries") or 0),
        int(stats.get("frames_in") or 0),
        int(sum(int(v) for v in errors.values())),
    ]


class SeriesRing:
    """The last ``size`` samples, one every ``step`` seconds (oldest dropped)."""

    def __init__(self, step: float = SERIES_STEP, size: int = SERIES_POINTS) -> None:
        self.step = step
        self.points: deque[list[float]] = deque(maxlen=size)

    def add(self, sample: list[float]) -> None:
        self.points.append(sample)

    def export(self, current: list[float] | None = None) -> dict[str, Any]:
        """``{"step", "fields", "points"}``; ``current`` (the sample of now) is appended, not kept."""
        points = list(self.points)
        if current is not None and (not points or current[0] > points[-1][0]):
            points.append(current)
        return {"step": self.step, "fields": list(SERIES_FIELDS), "points": points}


def _values(points: list[list[float]], index: int, counter: bool) -> list[tuple[float, float]]:
    """``(t, value)`` pairs: the field itself, or a counter's rate between successive samples."""
    if not counter:
        return [(p[0], float(p[index])) for p in points]
    out = []
    for before, after in zip(points, points[1:], strict=False):
        span = after[0] - before[0]
        if span > 0:
            out.append((after[0], max(0.0, (after[index] - before[index]) / span)))
    return out


def charts(
    nodes: Iterable[tuple[str, Mapping[str, Any]]], now: float | None = None, window: float = 900.0
) -> dict[str, Any]:
    """The page's chart data from ``(node name, export)`` pairs.

    Returns ``{"now", "window", "charts": [{"key", "title", "total": [[t, v], ...],
    "nodes": {name: [[t, v], ...]}}]}``: each node's own points within the window, and the
    total summed per step (a node counts in a step where it has a point).
    """
    now = time.time() if now is None else now
    since = now - window
    result = []
    exports = [(name, export) for name, export in nodes if export and export.get("points")]
    for key, title, field, counter in CHARTS:
        index = SERIES_FIELDS.index(field)
        per_node: dict[str, list[list[float]]] = {}
        buckets: dict[int, dict[str, tuple[float, float]]] = {}
        for name, export in exports:
            step = float(export.get("step") or SERIES_STEP)
            points = [p for p in export["points"] if isinstance(p, list) and len(p) >= len(SERIES_FIELDS)]
            values = [(t, v) for t, v in _values(points, index, counter) if t >= since]
            per_node[name] = [[round(t, 3), round(v, 3)] for t, v in values]
            for t, v in values:
                # The newest point of a node in each step counts for the total.
                buckets.setdefault(int(t // step), {})[name] = (t, v)
        total = [
            [round(max(t for t, _ in entry.values()), 3), round(sum(v for _, v in entry.values()), 3)]
            for _, entry in sorted(buckets.items())
        ]
        result.append({"key": key, "title": title, "total": total, "nodes": per_node})
    return {"now": round(now, 3), "window": window, "charts": result}
