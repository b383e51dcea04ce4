"""``OccupancyTracker``: turns a process's channel changes into cluster-wide occupied/vacated.

The hub calls ``touch(channel)`` whenever a channel may have gained its first or lost its last
local subscriber: a set lookup, and the channel is marked when the hub's view and the
tracker's differ. One background task brings the backend's ``OccupancyStore`` in line, one
channel at a time in the order they were marked, and reports what the store answers:
``channel_occupied`` when this process's ``add`` found no other holder, ``channel_vacated``
when its ``remove`` left none. A channel that comes and goes while the task is busy is
settled by its state when the task gets to it (a join and leave within one pass cost nothing).
A failed store call (Redis unreachable) is retried with a backoff; the channel stays marked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..backends.occupancy import OccupancyStore
from ..pusher_apps import unscoped

if TYPE_CHECKING:
    from .lifecycle import Lifecycle

logger = logging.getLogger("django_broadcasting.webhooks")

RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)


class OccupancyTracker:
    """Which channels this process holds in its backend's occupancy store, kept in step with the hub."""

    def __init__(
        self, lifecycle: Lifecycle, store: OccupancyStore, subscribed: Callable[[str], bool]
    ) -> None:
        self.lifecycle = lifecycle
        self.store = store
        self.subscribed = subscribed  # whether the hub has a local subscriber of a channel now
        self.held: set[str] = set()
        self.dirty: dict[str, None] = {}  # insertion-ordered set of channels to settle
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._failures = 0
        self._store_started = False  # the store (and its Redis heartbeat) starts with the first change

    # -- the hub's hook ----------------------------------------------------------------------
    def touch(self, channel: str) -> None:
        """The hub's subscribers of ``channel`` changed: settle it if it became (un)occupied here."""
        if channel.startswith("#") and unscoped(channel).startswith("#"):
            return  # reserved (#server-to-user-*): no webhooks, as on Pusher (#app-<id>: is an app's)
        if self.subscribed(channel) != (channel in self.held) or channel in self.dirty:
            self.dirty[channel] = None
            self._wake.set()

    # -- the OccupancyListener interface (cluster stores) ------------------------------------
    def held_count(self) -> int:
        return len(self.held)

    async def vacated_elsewhere(self, channels: list[str]) -> None:
        for channel in channels:
            await self.lifecycle.emit_channel("channel_vacated", channel)

    def forgotten(self) -> None:
        logger.warning(
            "the occupancy store forgot this node's %d channel(s): recording them again", len(self.held)
        )
        for channel in list(self.held):
            self.held.discard(channel)
            self.dirty[channel] = None
        self._wake.set()

    # -- the task ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            if not self.dirty:
                self._wake.clear()
                await self._wake.wait()
                continue
            channel = next(iter(self.dirty))
            del self.dirty[channel]
            try:
                if not self._store_started:
                    await self.store.start(self)
                    self._store_started = True
                await self.settle(channel)
                self._failures = 0
            except asyncio.CancelledError:
                self.dirty[channel] = None
                raise
            except Exception as exc:  # noqa: BLE001 - Redis unreachable: try again shortly
                self.dirty[channel] = None
                delay = RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS) - 1)]
                if self._failures == 0:
                    logger.warning("channel occupancy not recorded (%r); retrying", exc)
                self._failures += 1
                await asyncio.sleep(delay)

    async def settle(self, channel: str) -> None:
        """Record ``channel`` as the hub has it now, and report a cluster-wide change."""
        wanted = self.subscribed(channel)
        if wanted and channel not in self.held:
            first = await self.store.add(channel)
            self.held.add(channel)
            if first:
                await self.lifecycle.emit_channel("channel_occupied", channel)
        elif not wanted and channel in self.held:
            last = await self.store.remove(channel)
            self.held.discard(channel)
            if last:
                await self.lifecycle.emit_channel("channel_vacated", channel)

    async def aclose(self, deadline: float) -> None:
        """Settle what is marked (until ``deadline``), then leave the store: report what that vacated."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._task = None
        while self._store_started and self.dirty and time.monotonic() < deadline:
            channel = next(iter(self.dirty))
            del self.dirty[channel]
            try:
                await asyncio.wait_for(self.settle(channel), max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - left to the store's reaping
                break
        if not self._store_started:  # never used: nothing to leave
            vacated = []
        elif self.store.cluster_wide:
            vacated = await self.store.aclose()
        else:  # this process is the cluster: everything it held is vacated now
            await self.store.aclose()
            vacated = sorted(self.held)
        self.held.clear()
        for channel in vacated:
            await self.lifecycle.emit_channel("channel_vacated", channel)
