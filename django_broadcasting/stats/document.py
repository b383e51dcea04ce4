"""The stats document: this process's hub, every node's report (Redis), added up in one shape.

``collect()`` builds it here (this process's live figures plus, with the ``redis`` backend,
every other node's report); ``read()`` does so from any thread, or fetches it from the running
server (``stats.remote.fetch_remote``) when this process serves nothing and there is no
cluster to read; ``summarize(nodes)`` adds per-node reports up. The shape is documented in
docs/operations.md ("Stats"): top-level and per-node ``channels`` map each channel to its
subscribers, ``totals.channels`` counts them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from asgiref.sync import async_to_sync

from ..conf import broadcasting_settings
from ..core.loops import on_loop
from ..core.serving import hub_or_none
from ..exceptions import TransportError
from .apps import merge_app_stats

__all__ = [
    "RATE_FIELDS",
    "SUM_FIELDS",
    "RateWindow",
    "collect",
    "has_cluster",
    "local_node_stats",
    "read",
    "summarize",
]

#: Counters the rates are derived from (per second).
RATE_FIELDS = ("messages_in", "deliveries", "frames_in")
#: Figures summed over nodes into ``totals``.
SUM_FIELDS = ("connections", "connections_total", "presence_members", *RATE_FIELDS)


class RateWindow:
    """Per-second rates of the hub counters, from samples taken whenever stats are read.

    The rate compares the current counters with the newest sample at least ``min_age``
    seconds old (so two pollers do not shrink each other's window to nothing); before there
    is such a sample it is the average since the process started.
    """

    def __init__(self, min_age: float = 1.0, max_age: float = 60.0) -> None:
        self.min_age = min_age
        self.max_age = max_age
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def rates(self, counters: dict[str, int], uptime: float, now: float | None = None) -> dict[str, float]:
        now = time.monotonic() if now is None else now
        while self._samples and now - self._samples[0][0] > self.max_age:
            self._samples.popleft()
        base = None
        for stamp, sample in reversed(self._samples):
            if now - stamp >= self.min_age:
                base = (stamp, sample)
                break
        if base is None:
            span = max(uptime, 1e-9)
            result = {k: round(counters.get(k, 0) / span, 3) for k in RATE_FIELDS}
            result["window"] = round(uptime, 3)
        else:
            span = now - base[0]
            result = {k: round(max(0, counters.get(k, 0) - base[1].get(k, 0)) / span, 3) for k in RATE_FIELDS}
            result["window"] = round(span, 3)
        if not self._samples or now - self._samples[-1][0] >= self.min_age / 2:
            self._samples.append((now, {k: counters.get(k, 0) for k in RATE_FIELDS}))
        return result


_window = RateWindow()


def local_node_stats() -> dict[str, Any]:
    """This process's figures (``hub.stats()``) with message rates added."""
    stats = hub_or_none(load=True).stats()
    stats["errors"] = {str(code): count for code, count in stats.get("errors", {}).items()}
    stats["subscriptions"] = sum(stats["channels"].values())
    stats["rates"] = _window.rates(stats, stats.get("uptime", 0.0))
    return stats


def has_cluster() -> bool:
    """Whether the default backend keeps every node's report (the ``redis`` backend does)."""
    from ..drivers import get_driver

    return get_driver().cluster_wide


_node_windows: dict[str, RateWindow] = {}


def _with_rates(node: dict[str, Any]) -> dict[str, Any]:
    """Add rates to another node's report, from its successive reports (times of that node)."""
    name = str(node.get("node"))
    window = _node_windows.get(name)
    if window is None:
        window = _node_windows[name] = RateWindow(min_age=0.5, max_age=120.0)
    uptime = float(node.get("uptime") or 0.0)
    reported_at = float(node.get("started_at") or 0.0) + uptime
    node["rates"] = window.rates(node, uptime, now=reported_at)
    node["errors"] = {str(code): count for code, count in (node.get("errors") or {}).items()}
    node.setdefault("subscriptions", sum((node.get("channels") or {}).values()))
    return node


async def _cluster_nodes(local: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every node's figures: this process's live ones, plus the reports of the others in Redis.

    Raises ``TransportError`` when Redis cannot be read.
    """
    if not has_cluster():
        return [local] if local is not None else []
    from ..backends import acluster_stats

    report = await acluster_stats()
    nodes: dict[str, dict[str, Any]] = {local["node"]: local} if local is not None else {}
    for node in report.get("nodes") or ():
        if isinstance(node, dict) and node.get("node") and node["node"] not in nodes:
            nodes[node["node"]] = _with_rates(node)
    if len(_node_windows) > 4 * len(nodes) + 16:  # forget nodes that are long gone
        for name in set(_node_windows) - set(nodes):
            _node_windows.pop(name, None)
    return sorted(nodes.values(), key=lambda node: str(node.get("node")))


def summarize(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge per-node figures into the stats document (channels and presence across nodes)."""
    channels: dict[str, int] = {}
    presence: dict[str, dict[str, dict[str, Any]]] = {}
    errors: dict[str, int] = {}
    totals: dict[str, Any] = {field: 0 for field in SUM_FIELDS}
    rates = {k: 0.0 for k in RATE_FIELDS}
    for node in nodes:
        for field in SUM_FIELDS:
            totals[field] += int(node.get(field) or 0)
        for name, count in (node.get("channels") or {}).items():
            channels[name] = channels.get(name, 0) + int(count)
        for name, members in (node.get("presence") or {}).items():
            # A user on several nodes (or tabs) is one member.
            merged = presence.setdefault(name, {})
            for member in members:
                merged.setdefault(str(member.get("id")), member)
        for code, count in (node.get("errors") or {}).items():
            errors[str(code)] = errors.get(str(code), 0) + int(count)
        for k in RATE_FIELDS:
            rates[k] += float((node.get("rates") or {}).get(k, 0.0))
    presence_lists = {name: list(members.values()) for name, members in sorted(presence.items())}
    rates = {k: round(v, 3) for k, v in rates.items()}
    totals.update(
        {
            "nodes": len(nodes),
            "channels": len(channels),
            "subscriptions": sum(channels.values()),
            "presence_members": sum(len(m) for m in presence_lists.values())
            if presence_lists
            else totals["presence_members"],
            "errors": errors,
            "rates": rates,
        }
    )
    return {
        "connections": totals["connections"],
        "apps": merge_app_stats(nodes),
        "channels": dict(sorted(channels.items())),
        "presence": presence_lists,
        "presence_members": totals["presence_members"],
        "rates": rates,
        "totals": totals,
        "nodes": nodes,
    }


async def collect(series: bool = False) -> dict[str, Any]:
    """The stats document: this process's hub when it serves WebSockets, and with the
    ``redis`` driver every node's report (``TransportError`` if Redis cannot be read and
    there is no local hub to report instead).

    ``series=True`` (the admin's page) adds ``charts``: the last 15 minutes of every node,
    drawn from each node's samples (``server/series.py``).
    """
    hub = hub_or_none()
    local = local_node_stats() if hub is not None and hub.serving else None
    if local is not None:
        local["series"] = hub.series_export()
    cluster_error = None
    try:
        nodes = await _cluster_nodes(local)
    except TransportError as exc:
        if local is None:
            raise
        # A server still answers about itself while Redis is away, and says so.
        nodes, cluster_error = [local], exc.detail
    exports = [(str(node.get("node")), node.pop("series", None)) for node in nodes]
    document = {
        "node": local["node"] if local is not None else None,
        "generated_at": round(time.time(), 3),
        "driver": broadcasting_settings.default_driver_alias(),
        **summarize(nodes),
    }
    if cluster_error:
        document["cluster_error"] = cluster_error
    if series:
        from .series import charts

        document["charts"] = charts(exports)
    return document


def read(timeout: float | None = None, series: bool = False) -> dict[str, Any]:
    """The stats document, from any thread: this process's hub when it serves WebSockets
    (plus the other nodes with Redis); elsewhere every node's report from Redis, or the
    running server's ``GET /api/broadcast/stats``. ``TransportError`` when unreachable."""
    hub = hub_or_none()
    if hub is None or not hub.serving:
        if has_cluster():
            return async_to_sync(collect)(series)
        from .remote import fetch_remote

        return fetch_remote(timeout=timeout)
    loop = hub.loop
    if loop is not None and loop.is_running() and not _in_loop(loop):
        # The hub belongs to the server's event loop: read it there, never from this thread.
        future = asyncio.run_coroutine_threadsafe(collect(series), loop)
        return future.result(timeout or broadcasting_settings.TRIGGER_TIMEOUT)
    return async_to_sync(collect)(series)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    return on_loop(loop)
