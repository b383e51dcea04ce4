"""One process's subscription registry: ``channel -> connections`` and the transport in line with it.

The hub (``hub.py``) owns the lifecycle and the fan-out; this module keeps who is subscribed
where, the channel limit, the per-channel locks that order concurrent joins and leaves, the
channels this process holds in the transport (one transport subscription per channel per
process), and the connections held out of the fan-out while they catch up (recovery, cache
channels). The hub's fan-out reads ``subscribers`` and ``recovering`` directly (the same dict
objects, never rebound), so a delivery pays no extra call.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..backends.history import ReplayBuffer
from ..conf import broadcasting_settings
from ..exceptions import OverCapacity
from ..messages import Message

if TYPE_CHECKING:
    from ..backends.base import HubTransport
    from .connection import Connection


class Subscriptions:
    """``channel -> connections`` of one process, and its transport subscriptions."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[Connection]] = {}
        # Connections catching up on a channel: live messages wait in their buffer meanwhile.
        self.recovering: dict[str, list[tuple[Connection, list[Message]]]] = {}
        self.subscribed: set[str] = set()  # channels this process holds in the transport
        self.locks: dict[str, asyncio.Lock] = {}

    # -- join and leave ------------------------------------------------------------------
    def add(self, conn: Connection, channel: str) -> None:
        """Add ``conn`` to ``channel``; raise ``OverCapacity`` past ``MAX_CHANNELS`` channels."""
        subscribers = self.subscribers.get(channel)
        if subscribers is None:
            limit = broadcasting_settings.MAX_CHANNELS
            if limit and len(self.subscribers) >= limit:
                raise OverCapacity(f"This server holds {limit} channels, its limit; try again later.")
            subscribers = self.subscribers[channel] = set()
        subscribers.add(conn)
        conn.channels.add(channel)

    def discard(self, conn: Connection, channel: str) -> bool:
        """Remove ``conn`` from ``channel``; return False when it was not subscribed."""
        if channel not in conn.channels:
            return False
        conn.channels.discard(channel)
        subscribers = self.subscribers.get(channel)
        if subscribers is not None:
            subscribers.discard(conn)
            if not subscribers and channel not in self.recovering:
                del self.subscribers[channel]
        return True

    async def sync(self, channel: str, transport: HubTransport | None) -> None:
        """Bring ``transport`` in line with the local subscriber set of ``channel``.

        One subscription per process per channel; the lock orders concurrent joins and leaves
        of one channel and is dropped once nobody waits on it.
        """
        if transport is None:
            return
        lock = self.locks.get(channel)
        if lock is None:
            lock = self.locks[channel] = asyncio.Lock()
        try:
            async with lock:
                wanted = channel in self.subscribers
                if wanted and channel not in self.subscribed:
                    await transport.subscribe(channel)
                    self.subscribed.add(channel)
                elif not wanted and channel in self.subscribed:
                    self.subscribed.discard(channel)
                    await transport.unsubscribe(channel)
        finally:
            if not lock.locked() and self.locks.get(channel) is lock:
                del self.locks[channel]

    # -- catching up: held out of the fan-out, live messages buffered ----------------------
    def hold_live(self, conn: Connection, channel: str) -> ReplayBuffer:
        """Take ``conn`` out of ``channel``'s fan-out; live messages for it wait in the returned buffer."""
        buffer = ReplayBuffer()
        self.recovering.setdefault(channel, []).append((conn, buffer))
        self.subscribers[channel].discard(conn)
        return buffer

    def release_live(self, conn: Connection, channel: str, buffer: ReplayBuffer) -> None:
        """Stop holding live messages for ``conn`` (its buffer is handed back by ``hold_live``)."""
        waiting = self.recovering.get(channel, [])
        for index, (held, held_buffer) in enumerate(waiting):
            if held is conn and held_buffer is buffer:
                del waiting[index]
                break
        if not waiting:
            self.recovering.pop(channel, None)

    def rejoin(self, conn: Connection, channel: str) -> bool:
        """Put ``conn`` back into ``channel``'s fan-out; return True when the channel was new."""
        resync = channel not in self.subscribers
        self.subscribers.setdefault(channel, set()).add(conn)
        return resync

    def forget_if_empty(self, channel: str) -> bool:
        """Drop ``channel`` when its last subscriber left during a replay; return True if dropped."""
        if not self.subscribers.get(channel, True):
            del self.subscribers[channel]
            return True
        return False

    def channel_counts(self, prefix: str = "") -> dict[str, int]:
        """Local subscriptions per occupied channel whose hub name starts with ``prefix``."""
        return {
            name: len(subs) for name, subs in self.subscribers.items() if subs and name.startswith(prefix)
        }
