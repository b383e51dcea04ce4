"""``Lifecycle``: a server process's channel events, sent as webhooks and as Django signals.

The hub owns one, started with it. It hears four things, each from the process that observed it:

- channel occupancy (``touch``, through ``OccupancyTracker`` and the backend's occupancy store):
  ``channel_occupied`` / ``channel_vacated``, once for the cluster;
- presence (``member``): ``member_added`` / ``member_removed`` as the presence store decided them
  (cluster-wide with Redis; the node that reaps a dead node reports its members' departures);
- client events (``client_events``): ``client_event`` from the node the sending socket is on;
- cache misses (``cache_miss``), from the node the subscriber is on.

Each event goes to the matching ``webhook_targets()`` (queued; see ``sender.py``) and to its
Django signal. Nothing is tracked for an event that no target wants and no receiver listens to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

from .. import signals
from ..pusher_apps import split_channel
from . import payloads
from .config import webhook_targets
from .occupancy import OccupancyTracker
from .sender import TargetSender, WebhookStats

if TYPE_CHECKING:
    from ..backends.base import Backend
    from ..messages import Message

logger = logging.getLogger("django_broadcasting.webhooks")

__all__ = ["Lifecycle", "current"]

#: How long stopping waits for the last events to go out.
CLOSE_TIMEOUT = 2.0


#: The signal of each event that has one of its own (member events have ``member_joined/left``).
_SIGNALS: dict[str, Signal] = {
    "channel_occupied": signals.channel_occupied,
    "channel_vacated": signals.channel_vacated,
    "client_event": signals.client_event,
    "cache_miss": signals.cache_miss,
}


class Lifecycle:
    """Webhooks and lifecycle signals of one server process (the hub's ``lifecycle``)."""

    def __init__(self, host: Any, backend: Backend) -> None:
        self.host = host
        self.stats = WebhookStats()
        self.senders = [TargetSender(target, self.stats) for target in webhook_targets()]
        self.wanted = frozenset(name for s in self.senders for name in s.target.events)
        store = backend.create_occupancy(host.node_id)
        self.occupancy = OccupancyTracker(self, store, lambda channel: channel in host.subscribers)
        self._tasks: set[asyncio.Task] = set()

    def wants(self, name: str) -> bool:
        """Whether an event ``name`` goes anywhere: a webhook target, or a signal receiver."""
        if name in self.wanted:
            return True
        signal = _SIGNALS.get(name)
        return bool(signal is not None and signal.receivers)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        for sender in self.senders:
            sender.start()
        await self.occupancy.start()
        global _current
        _current = self

    async def aclose(self) -> None:
        """Report what stopping vacates, then send what is queued (for up to ``CLOSE_TIMEOUT``)."""
        global _current
        deadline = time.monotonic() + CLOSE_TIMEOUT
        try:
            await self.occupancy.aclose(deadline)
        except Exception as exc:  # noqa: BLE001 - the store's reaping covers it
            logger.debug("occupancy close failed: %r", exc)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(s.aclose(deadline) for s in self.senders), return_exceptions=True)
        if _current is self:
            _current = None

    # -- what the hub and the stores report --------------------------------------------------
    def touch(self, channel: str) -> None:
        """A channel's local subscribers changed (the hub): occupancy is settled in the background."""
        if self.wants("channel_occupied") or self.wants("channel_vacated") or self.occupancy.held:
            self.occupancy.touch(channel)

    def member(self, name: str, channel: str, user_id: str, *, signal: bool = False) -> None:
        """``member_added`` / ``member_removed`` decided by the presence store (``signal``: send
        ``member_left`` too, for departures no socket of this process made, e.g. a reaped node)."""
        if name in self.wanted:
            self._enqueue(payloads.member_event(name, channel, user_id), channel)
        if signal and name == "member_removed" and signals.member_left.receivers:
            self._background(
                signals.asend_fast(
                    signals.member_left,
                    sender=type(self.host),
                    channel=channel,
                    user_id=user_id,
                    member={"id": user_id},
                )
            )

    async def client_events(self, messages: Sequence[Message]) -> None:
        """Client events (whispers) this process's sockets sent."""
        if not self.wants("client_event"):
            return
        for m in messages:
            event = payloads.client_event(m.channel, m.event, m.data, m.data_json, m.socket_id, m.user_id)
            await self.emit(event, m.channel)

    async def emit_channel(self, name: str, channel: str) -> None:
        """``channel_occupied``, ``channel_vacated`` or ``cache_miss`` of ``channel``."""
        await self.emit(payloads.channel_event(name, channel), channel)

    async def emit(self, event: dict[str, Any], channel: str) -> None:
        """Queue ``event`` for the targets that want it, and send its Django signal."""
        name = event["name"]
        if name in self.wanted:
            self._enqueue(event, channel)
        signal = _SIGNALS.get(name)
        if signal is not None and signal.receivers:
            try:
                await signals.asend_fast(signal, sender=type(self.host), channel=channel, event=event)
            except Exception:  # a receiver's bug must not stop the server's bookkeeping
                logger.exception("a %s signal receiver failed", name)

    def _enqueue(self, event: dict[str, Any], channel: str) -> None:
        # Each app's receivers get the events of its own channels (the hub name says which app).
        app_id = split_channel(channel)[0].id
        for sender in self.senders:
            if sender.target.app_id == app_id and sender.target.wants(event["name"]):
                sender.enqueue(event)

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def state(self) -> dict[str, Any]:
        """Figures for the stats API and ``/metrics``."""
        return {
            **self.stats.as_dict(),
            "pending": sum(s.pending for s in self.senders),
            "targets": [s.state() for s in self.senders],
            "channels_held": len(self.occupancy.held),
        }


_current: Lifecycle | None = None


def current() -> Lifecycle | None:
    """This process's running lifecycle (None outside a started server)."""
    return _current
