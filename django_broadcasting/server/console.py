"""The debug console's recorder: what a server process's hub does, while someone watches.

The admin's debug console (``/admin/django_broadcasting/console/``) shows every broadcast a
hub delivers, every subscribe and unsubscribe, and every presence join and leave. The hub
pays for that only while a console is open: ``Hub.console`` is None otherwise, and the hot
path (``Hub.deliver``) checks that one attribute and nothing else.

A console page refreshes a watch every time it polls (``CONSOLE_WATCH_TTL`` seconds). In a
single process the watch turns the recorder on directly; with the redis backend the watch is
a key in Redis that every node looks at once a second (``backends/redis/admin.py``), and the
nodes copy their events into one Redis stream that any process reads.

The recorder is a bounded ring (``CONSOLE_BUFFER`` events): when the page or the Redis copy
falls behind, the oldest events go first and are counted in ``dropped``; fan-out never waits.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from ..backends.base import CONSOLE_WATCH_TTL

__all__ = ["ConsoleRecorder", "CONSOLE_BUFFER", "CONSOLE_WATCH_TTL", "PREVIEW_CHARS", "broadcast_kind"]

#: Events a node keeps for the console (drop-oldest beyond that).
CONSOLE_BUFFER = 2000
#: Characters of a payload shown in the console.
PREVIEW_CHARS = 200


def broadcast_kind(origin: str | None) -> str:
    """The console's label of a broadcast's origin (``app`` for application code)."""
    return origin or "app"


class ConsoleRecorder:
    """A node's console events: ``(seq, event dict)`` in a bounded ring, oldest dropped first."""

    def __init__(self, node: str, size: int = CONSOLE_BUFFER) -> None:
        self.node = node
        self.events: deque[dict[str, Any]] = deque(maxlen=size)
        self.seq = 0  # the number of the newest event
        self.dropped = 0  # events pushed out of the ring before anyone read them
        self.read_seq = 0  # the newest event a reader (the page, the Redis copy) has taken
        self.until = 0.0  # monotonic deadline of the current watch

    # -- watching ---------------------------------------------------------------------------
    def watch(self, ttl: float = CONSOLE_WATCH_TTL) -> None:
        self.until = max(self.until, time.monotonic() + ttl)

    @property
    def watched(self) -> bool:
        return time.monotonic() < self.until

    # -- recording (called by the hub only while ``hub.console`` is this recorder) ------------
    def _add(self, event: dict[str, Any]) -> None:
        events = self.events
        if len(events) == events.maxlen and events[0]["seq"] > self.read_seq:
            self.dropped += 1
        self.seq += 1
        event["seq"] = self.seq
        event["t"] = time.time()
        event["node"] = self.node
        events.append(event)

    def broadcast(self, message: Any, recipients: int) -> None:
        data_json = message.data_json
        self._add(
            {
                "type": "broadcast",
                "channel": message.channel,
                "event": message.event,
                "size": len(data_json.encode()),
                "preview": data_json[:PREVIEW_CHARS],
                "origin": broadcast_kind(message.origin),
                "recipients": recipients,
                "id": message.id,
            }
        )

    def subscription(self, kind: str, channel: str, socket_id: str, user_id: Any = None) -> None:
        self._add({"type": kind, "channel": channel, "socket_id": socket_id, "user": user_id})

    def member(self, kind: str, channel: str, user_id: Any) -> None:
        self._add({"type": kind, "channel": channel, "user": user_id})

    # -- reading ---------------------------------------------------------------------------
    def read(self, after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        """Events newer than ``after`` (oldest first, at most ``limit``); marks them read."""
        out = [event for event in self.events if event["seq"] > after]
        if len(out) > limit:
            out = out[-limit:]
        if out:
            self.read_seq = max(self.read_seq, out[-1]["seq"])
        return out

    def state(self) -> dict[str, Any]:
        return {"node": self.node, "seq": self.seq, "dropped": self.dropped, "watched": self.watched}
