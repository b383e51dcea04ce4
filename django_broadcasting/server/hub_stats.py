"""One hub's figures, computed when read: the stats report, the chart samples.

The hub only increments plain integers while it works (``messages_in``, ``deliveries``,
``frames_in``, ``errors``, ...); everything here reads them, so the fan-out pays nothing for it.
The stats document over every node is ``django_broadcasting.stats``.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from ..backends.history import MemoryHistory
from ..stats.series import SERIES_STEP

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["hub_stats", "record_samples", "sample", "task_count"]


def hub_stats(hub: Hub) -> dict[str, Any]:
    """Return this process's figures (read by the stats API, metrics and commands)."""
    return {
        "node": hub.node_id,
        "pid": os.getpid(),
        "started_at": hub.started_at,
        "uptime": round(time.time() - hub.started_at, 3),
        "connections": len(hub.connections),
        "connections_total": hub.connections_total,
        "channels": {name: len(subs) for name, subs in hub.subscribers.items()},
        "presence": hub.presence.snapshot(),
        "presence_members": hub.presence.count(),
        "messages_in": hub.messages_in,
        "deliveries": hub.deliveries,
        "frames_in": hub.frames_in,
        "errors": dict(hub.errors),
        "apps": hub.app_stats(),
        "transport": type(hub.transport).__name__ if hub.transport else None,
        "backend": hub.backend.name if hub.backend else None,
        "history": hub.history.stats() if isinstance(hub.history, MemoryHistory) else None,
        "channel_cache": hub.cache.stats() if hub.cache is not None else None,
        # e.g. the Redis link: {"connected", "reconnects", "channels", "last_error"}
        "transport_state": hub.transport.state if hub.transport is not None else None,
        # asyncio tasks alive on the server's loop (sockets' own included): a leak shows here.
        "tasks": task_count(hub),
        "webhooks": hub.lifecycle.state() if hub.lifecycle is not None else None,
    }


def task_count(hub: Hub) -> int:
    loop = hub.loop
    if loop is None or loop.is_closed():
        return 0
    try:
        return len(asyncio.all_tasks(loop))
    except RuntimeError:  # the set changed size while read from another thread: try once more
        return len(asyncio.all_tasks(loop))


def sample(hub: Hub) -> list[float]:
    """This instant's sample for the charts (see ``stats/series.py``)."""
    return [
        round(time.time(), 3),
        len(hub.connections),
        hub.messages_in,
        hub.deliveries,
        hub.frames_in,
        sum(hub.errors.values()),
    ]


async def record_samples(hub: Hub) -> None:
    """Add a sample to the hub's ring every ``SERIES_STEP`` seconds (a task ``Hub.start`` creates)."""
    hub.series.add(hub.sample())
    while True:
        await asyncio.sleep(SERIES_STEP)
        hub.series.add(hub.sample())
