"""Message history and recovery: per-channel offsets with an epoch.

Every message published on a channel while history is on gets an id ``"<epoch>:<offset>"``:
``offset`` counts the channel's messages from 1, and ``epoch`` names one continuous run of
that counter. The epoch changes whenever the history behind it is lost (the channel sat idle
past ``HISTORY_TTL``, the server restarted, Redis was flushed), so an old id can never be
mistaken for a position in the new run.

A client that reconnects and resubscribes with the last id it saw gets every message after
it, in order, or an explicit failure when some of them are gone (trimmed past
``HISTORY_SIZE``, expired, or from another epoch): never a silent gap.

``MemoryHistory`` serves the single-process default; the Redis driver keeps the same ids in
a capped Redis Stream, written atomically with the PUBLISH (``backends/redis/history.py``).
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..messages import _UNDECODED, Message

__all__ = [
    "HistoryStore",
    "MemoryHistory",
    "Recovery",
    "ReplayBuffer",
    "format_id",
    "is_newer",
    "new_epoch",
    "parse_id",
]


_epochs: list = [0, "", itertools.count()]  # pid, random prefix, counter


def new_epoch() -> str:
    """Return a fresh, short epoch name, never the same twice on any process.

    A random prefix drawn once per process (again after a fork) plus a counter: publishers
    ask for one per publish, so this must cost no system call.
    """
    pid = os.getpid()
    if _epochs[0] != pid:
        _epochs[:] = [pid, secrets.token_hex(3), itertools.count()]
    return f"{_epochs[1]}{next(_epochs[2]):x}"


def format_id(epoch: str, offset: int) -> str:
    return f"{epoch}:{offset}"


def parse_id(value: object) -> tuple[str, int] | None:
    """Split ``"<epoch>:<offset>"``; None when ``value`` is not such an id."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    epoch, sep, offset = value.rpartition(":")
    if not sep or not epoch or not (offset.isascii() and offset.isdigit()):
        return None
    return epoch, int(offset)


def is_newer(message_id: object, last: tuple[str, int] | None) -> bool:
    """Whether a message with ``message_id`` comes after position ``last`` (not covered by a replay).

    Another epoch, or an id or position that cannot be compared, counts as newer: a duplicate
    is harmless, a gap is not.
    """
    position = parse_id(message_id)
    return position is None or last is None or position[0] != last[0] or position[1] > last[1]


class ReplayBuffer(list):
    """Live messages held while a history read is awaited; ``merge`` puts them after the replay.

    "Buffer live messages, replay, de-duplicate", written once: the recovery of one socket
    (``server/recovery.py``, items are ``Message``) and the Redis transport's catch-up after a
    reconnect (``backends/redis/transport.py``, items are transport dicts) both use it. A plain
    list underneath, so holding a message costs one ``list.append``.
    """

    __slots__ = ()

    def merge(self, replayed: list, since: tuple[str, int] | None, id_of: Callable[[Any], object]) -> list:
        """``replayed`` (in order, after ``since``), then the held items the replay did not cover."""
        last = parse_id(id_of(replayed[-1])) if replayed else since
        return [*replayed, *(item for item in self if is_newer(id_of(item), last))]


@dataclass
class Recovery:
    """The outcome of a recovery: the missed messages in order, or why they are gone."""

    messages: list[Message] = field(default_factory=list)
    ok: bool = True
    reason: str = ""
    #: The channel's newest id when the history was read (None when it has no history).
    current_id: str | None = None

    @classmethod
    def failed(cls, reason: str, current_id: str | None = None) -> Recovery:
        return cls([], False, reason, current_id)


class HistoryStore(Protocol):
    """What the hub needs from a backend's history.

    A store that ``assigns_ids`` (in memory) numbers each message the hub delivers with
    ``append``; otherwise the publisher numbered it already (Redis) and the hub only recovers.
    """

    assigns_ids: bool

    def append(self, message: Message) -> Message: ...
    async def recover(self, channel: str, since: str) -> Recovery: ...
    def prune(self) -> None: ...


#: Bytes counted for a kept message beyond its JSON: the slim Message object and the deque slot.
ENTRY_OVERHEAD = 400


class _ChannelLog:
    __slots__ = ("epoch", "offset", "entries", "bytes", "last_write")

    def __init__(self) -> None:
        self.epoch = new_epoch()
        self.offset = 0
        self.entries: deque[tuple[Message, int]] = deque()  # (message, its size in bytes)
        self.bytes = 0
        self.last_write = time.monotonic()


class MemoryHistory:
    """Bounded per-channel history in this process's memory (the single-process default).

    Memory is bounded by configuration, not by what clients send:

    - ``size`` messages at most per channel, and ``channel_bytes`` bytes at most per channel;
    - ``total_bytes`` at most for the whole process: past it, the oldest entries of the channel
      that holds the most go first;
    - a message is kept as its encoded JSON (the payload is never kept decoded), and only when
      ``message.history`` is true: client events and whispers are not kept unless
      ``HISTORY_CLIENT_EVENTS`` is on;
    - a channel's whole history (and its epoch) is dropped ``ttl`` seconds after its last
      message (0 keeps it as long as the process lives).

    A trimmed entry makes a recovery that needs it fail ("trimmed"), never a silent gap.
    """

    assigns_ids = True

    def __init__(self, size: int, ttl: float, channel_bytes: int = 0, total_bytes: int = 0) -> None:
        self.size = size
        self.ttl = ttl
        self.channel_bytes = channel_bytes  # 0 = no limit
        self.total_bytes = total_bytes  # 0 = no limit
        self.bytes = 0
        self._channels: dict[str, _ChannelLog] = {}

    def append(self, message: Message) -> Message:
        """Give ``message`` the channel's next id, keep a slim copy, and return the stamped message.

        A message that keeps no history (``message.history`` false) is returned as it is.
        """
        if not message.history:
            return message
        log = self._log(message.channel)
        log.offset += 1
        stamped = message.with_id(format_id(log.epoch, log.offset))
        # The copy keeps the payload as JSON only (``data`` decodes it again if ever read); the
        # frames encoded for its delivery are cached on it and counted: twice the JSON.
        stamped._data = _UNDECODED
        cost = 2 * len(stamped.data_json) + len(stamped.channel) + len(stamped.event) + ENTRY_OVERHEAD
        log.entries.append((stamped, cost))
        log.bytes += cost
        self.bytes += cost
        log.last_write = time.monotonic()
        while log.entries and (
            len(log.entries) > self.size or (self.channel_bytes and log.bytes > self.channel_bytes)
        ):
            self._drop_oldest(log)
        if self.total_bytes and self.bytes > self.total_bytes:
            self._shrink()
        return stamped

    def _drop_oldest(self, log: _ChannelLog) -> None:
        _, cost = log.entries.popleft()
        log.bytes -= cost
        self.bytes -= cost

    def _shrink(self) -> None:
        # Over the process budget: take from the biggest channels first, so one noisy channel
        # cannot push every other channel's history out.
        for log in sorted(self._channels.values(), key=lambda lg: lg.bytes, reverse=True):
            while log.entries and self.bytes > self.total_bytes * 0.9:
                self._drop_oldest(log)
            if self.bytes <= self.total_bytes * 0.9:
                return

    def _log(self, channel: str) -> _ChannelLog:
        log = self._channels.get(channel)
        if log is not None and self.ttl and time.monotonic() - log.last_write > self.ttl:
            self.bytes -= log.bytes  # expired: a new epoch, so old ids fail instead of matching new offsets
            log = None
        if log is None:
            log = self._channels[channel] = _ChannelLog()
        return log

    def current_id(self, channel: str) -> str | None:
        log = self._live(channel)
        return format_id(log.epoch, log.offset) if log is not None and log.offset else None

    def _live(self, channel: str) -> _ChannelLog | None:
        log = self._channels.get(channel)
        if log is not None and self.ttl and time.monotonic() - log.last_write > self.ttl:
            return None
        return log

    async def recover(self, channel: str, since: str) -> Recovery:
        return self.recover_now(channel, since)

    def recover_now(self, channel: str, since: str) -> Recovery:
        """Return the messages after ``since`` (synchronously: nothing here waits)."""
        position = parse_id(since)
        if position is None:
            return Recovery.failed("malformed last_id")
        epoch, offset = position
        log = self._live(channel)
        if log is None:
            return Recovery.failed("no history for this channel")
        current = format_id(log.epoch, log.offset)
        if epoch != log.epoch:
            return Recovery.failed("history epoch changed", current)
        if offset > log.offset:
            return Recovery.failed("last_id is ahead of the channel", current)
        missed = log.offset - offset
        if missed == 0:
            return Recovery([], True, "", current)
        if missed > len(log.entries):
            return Recovery.failed("messages were trimmed from the history", current)
        entries = [message for message, _ in list(log.entries)[-missed:]]
        return Recovery(entries, True, "", current)

    def prune(self) -> None:
        """Forget channels idle past the TTL (called by the hub's sweeper)."""
        if not self.ttl:
            return
        now = time.monotonic()
        for name in [n for n, log in self._channels.items() if now - log.last_write > self.ttl]:
            self.bytes -= self._channels.pop(name).bytes

    def clear(self) -> None:
        self._channels.clear()
        self.bytes = 0

    def stats(self) -> dict[str, int]:
        """Channels, entries and bytes kept (shown in the hub's stats)."""
        return {
            "channels": len(self._channels),
            "entries": sum(len(log.entries) for log in self._channels.values()),
            "bytes": self.bytes,
        }
