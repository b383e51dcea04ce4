"""Stats across nodes with the ``redis`` backend: what every server process reported.

Each server process stores its ``hub.stats()`` in Redis with every presence heartbeat
(``{prefix}bc:stats:{node}``, expiring after ``max(3 * interval, PRESENCE_TTL)``; the interval
is ``min(PRESENCE_TTL / 4, STATS_INTERVAL)``). Any process (a WSGI worker serving the stats
API, ``manage.py broadcast stats``) reads them back through ``RedisBackend.acluster_stats()``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..base import stats_totals

if TYPE_CHECKING:
    from . import RedisBackend

__all__ = ["aread_node_stats"]


async def aread_node_stats(driver: RedisBackend) -> dict[str, Any]:
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
    return {"nodes": nodes, "node_count": len(nodes), "totals": stats_totals(nodes), "source": "redis"}
