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
a capped Redis Stream, written atomically with the PUBLISH (``server/redis_history.py``).
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from ..messages import Message

__all__ = [
    "History",
    "MemoryHistory",
    "Recovery",
    "format_id",
    "new_epoch",
    "parse_id",
]


def new_epoch() -> str:
    """Return a fresh, short random epoch name."""
    return secrets.token_hex(4)


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


class History(Protocol):
    """What the hub needs from a history backend."""

    #: True when the hub itself assigns ids (in-memory); False when the driver does (Redis).
    assigns_ids: bool

    async def recover(self, channel: str, since: str) -> Recovery: ...


class _ChannelLog:
    __slots__ = ("epoch", "offset", "entries", "last_write")

    def __init__(self, size: int) -> None:
        self.epoch = new_epoch()
        self.offset = 0
        self.entries: deque[Message] = deque(maxlen=size)
        self.last_write = time.monotonic()


class MemoryHistory:
    """Bounded per-channel history in this process's memory (the single-process default).

    ``size`` messages are kept per channel; a channel's whole history (and its epoch) is
    dropped ``ttl`` seconds after its last message (0 keeps it as long as the process lives).
    """

    assigns_ids = True

    def __init__(self, size: int, ttl: float) -> None:
        self.size = size
        self.ttl = ttl
        self._channels: dict[str, _ChannelLog] = {}

    def append(self, message: Message) -> Message:
        """Give ``message`` the channel's next id, keep it, and return the stamped copy."""
        log = self._log(message.channel)
        log.offset += 1
        stamped = message.with_id(format_id(log.epoch, log.offset))
        log.entries.append(stamped)
        log.last_write = time.monotonic()
        return stamped

    def _log(self, channel: str) -> _ChannelLog:
        log = self._channels.get(channel)
        if log is not None and self.ttl and time.monotonic() - log.last_write > self.ttl:
            log = None  # expired: a new epoch, so old ids fail instead of matching new offsets
        if log is None:
            log = self._channels[channel] = _ChannelLog(self.size)
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
        entries = list(log.entries)[-missed:]
        return Recovery(entries, True, "", current)

    def prune(self) -> None:
        """Forget channels idle past the TTL (called by the hub's sweeper)."""
        if not self.ttl:
            return
        now = time.monotonic()
        for name in [n for n, log in self._channels.items() if now - log.last_write > self.ttl]:
            del self._channels[name]

    def clear(self) -> None:
        self._channels.clear()
