"""Channel occupancy: whether a channel has a subscriber anywhere in the cluster.

A server process tells its backend's store when it starts holding a channel (its first local
subscriber) and when it stops (its last one left); the store answers whether that made the
channel occupied or vacated for the whole cluster. ``LocalOccupancy`` is the one-process answer:
the process is the cluster, so every change is one. The Redis backend's store
(``backends/redis/occupancy.py``) answers for every node sharing the Redis, and reaps nodes that
died holding channels.

The server's webhook lifecycle (``django_broadcasting.webhooks``) drives the store; it turns
answers into ``channel_occupied`` / ``channel_vacated``.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["LocalOccupancy", "OccupancyListener", "OccupancyStore"]


class OccupancyListener(Protocol):
    """What a cluster-wide store reports back to the process that drives it."""

    def held_count(self) -> int:
        """How many channels this process holds (a store that remembers fewer lost them)."""
        ...

    async def vacated_elsewhere(self, channels: list[str]) -> None:
        """Channels left empty because the nodes holding them died (reaped by this process)."""
        ...

    def forgotten(self) -> None:
        """The store lost this process's channels (a Redis restart): record them all again."""
        ...


class OccupancyStore(Protocol):
    """A backend's record of which server processes hold which channels."""

    #: True when the answers cover every server process (not only this one).
    cluster_wide: bool

    async def start(self, listener: OccupancyListener) -> None: ...
    async def add(self, channel: str) -> bool:
        """Record that this process holds ``channel``; True when no other process did."""
        ...

    async def remove(self, channel: str) -> bool:
        """Record that this process no longer holds ``channel``; True when no process does any more."""
        ...

    async def aclose(self) -> list[str]:
        """Leave at once; return the channels that leaving vacated."""
        ...


class LocalOccupancy:
    """One process is the whole cluster: its first subscriber occupies, its last one vacates."""

    cluster_wide = False

    async def start(self, listener: OccupancyListener) -> None:
        """Nothing to start."""

    async def add(self, channel: str) -> bool:
        return True

    async def remove(self, channel: str) -> bool:
        return True

    async def aclose(self) -> list[str]:
        return []
