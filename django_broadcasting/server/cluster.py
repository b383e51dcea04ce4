"""Stats across nodes: what every server process reported, per node and in total.

With the ``redis`` driver each server process stores its ``hub.stats()`` in Redis with every
presence heartbeat (``{prefix}bc:stats:{node}``, expiring after ``max(3 * interval,
PRESENCE_TTL)``; the interval is ``min(PRESENCE_TTL / 4, STATS_INTERVAL)``). Any process (a
WSGI worker serving the stats API, ``manage.py broadcast stats``) reads them back::

    from django_broadcasting.server.cluster import cluster_stats
    report = cluster_stats()            # or: await acluster_stats()
    report["totals"]["connections"], [n["node"] for n in report["nodes"]]

With other drivers there is no shared store: the report holds this process's hub when it
serves WebSockets, and no nodes otherwise.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..sync import sync_shim

if TYPE_CHECKING:
    from ..drivers.redis import RedisDriver

__all__ = ["acluster_stats", "aread_node_stats", "cluster_stats", "totals"]

_SUMMED = ("connections", "connections_total", "messages_in", "deliveries", "frames_in", "presence_members")


def totals(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Add up per-node figures; ``channels`` maps each channel to its subscribers on all nodes."""
    out: dict[str, Any] = {key: 0 for key in _SUMMED}
    channels: dict[str, int] = {}
    errors: dict[str, int] = {}
    for node in nodes:
        for key in _SUMMED:
            value = node.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] += value
        for name, count in (node.get("channels") or {}).items():
            channels[name] = channels.get(name, 0) + int(count)
        for code, count in (node.get("errors") or {}).items():
            errors[str(code)] = errors.get(str(code), 0) + int(count)
    out["channels"] = channels
    out["subscriptions"] = sum(channels.values())
    out["errors"] = errors
    return out


async def aread_node_stats(driver: RedisDriver) -> dict[str, Any]:
    """Read every live node's last report from Redis."""
    keys = driver.keys
    async with driver.session() as client:
        seconds, micros = await client.time()
        now_ms = seconds * 1000 + micros // 1000
        names = await client.zrangebyscore(keys.nodes, now_ms, "+inf")
        names = [n.decode() if isinstance(n, bytes) else n for n in names]
        raw = await client.mget([keys.node_stats(n) for n in names]) if names else []
    nodes = []
    for value in raw:
        if value is not None:
            try:
                nodes.append(json.loads(value))
            except ValueError:
                continue
    nodes.sort(key=lambda n: str(n.get("node")))
    return {"nodes": nodes, "node_count": len(nodes), "totals": totals(nodes), "source": "redis"}


async def acluster_stats() -> dict[str, Any]:
    """Per-node and total figures of every server process (see the module docstring).

    Returns ``{"nodes": [hub.stats() of each node], "node_count": int, "totals": {...},
    "source": "redis" | "local"}``. Raises ``TransportError`` when Redis cannot be reached.
    """
    from ..drivers import get_driver
    from ..exceptions import TransportError
    from .hub import get_hub

    driver = get_driver()
    reader = getattr(driver, "acluster_stats", None)
    if reader is not None:
        try:
            return await reader()
        except TransportError:
            raise
        except Exception as exc:  # redis errors, timeouts
            raise TransportError(f"Could not read node stats from Redis: {exc}") from exc
    hub = get_hub()
    nodes = [hub.stats()] if hub.serving else []
    return {"nodes": nodes, "node_count": len(nodes), "totals": totals(nodes), "source": "local"}


cluster_stats = sync_shim(acluster_stats)
