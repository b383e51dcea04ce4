"""Backends: each owns both sides of one transport (see ``base.Backend``).

``local`` (alias ``websocket``: this process, a Channels layer, or the HTTP trigger) and ``redis``
carry messages to servers and back; ``log``, ``null``, ``memory`` and ``pusher`` (in ``drivers/``)
are publish-only. Backends are configured and looked up by alias through ``drivers``
(``BROADCASTING["DRIVERS"]``); the default alias is resolved once, by
``broadcasting_settings.default_driver_alias()``.
"""

from __future__ import annotations

from typing import Any

from ..sync import sync_shim
from .base import Backend, PublishReceipt, local_server, register_local_server, stats_totals

__all__ = [
    "Backend",
    "PublishReceipt",
    "acluster_stats",
    "cluster_stats",
    "get_backend",
    "local_server",
    "register_local_server",
    "stats_totals",
]


def get_backend(alias: str | None = None) -> Backend:
    """Return the backend configured under ``alias``, or the default one."""
    from ..drivers import get_driver

    return get_driver(alias)


async def acluster_stats() -> dict[str, Any]:
    """Per-node and total figures of every server process, read through the default backend.

    Returns ``{"nodes": [hub.stats() of each node], "node_count": int, "totals": {...},
    "source": "redis" | "local"}``. With Redis, every node's last report; otherwise this
    process's server when it serves WebSockets, and no nodes when it does not. Raises
    ``TransportError`` when the backend's store cannot be reached.
    """
    return await get_backend().acluster_stats()


cluster_stats = sync_shim(acluster_stats)
