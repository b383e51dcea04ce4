"""History in Redis: reading back what the ``redis`` driver's publish script stored.

Each channel has a hash ``{prefix}bc:offset:{channel}`` (``e`` = epoch, ``o`` = last offset)
and a capped stream ``{prefix}bc:history:{channel}`` whose entry ids are ``<offset>-0`` and
whose field ``m`` is the message as published. Both expire ``HISTORY_TTL`` after the last
publish; the publish script starts a new epoch when the hash is gone, so ids from before a
flush, an expiry or a Redis restart fail recovery instead of matching new offsets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...conf import broadcasting_settings
from ...messages import Message, transport_payload
from ..history import Recovery, format_id, parse_id

if TYPE_CHECKING:
    from . import RedisBackend


@dataclass
class Window:
    """A channel's history position and the entries after some offset (as transport dicts)."""

    epoch: str | None
    offset: int
    entries: list[tuple[int, dict[str, Any]]]

    @property
    def current_id(self) -> str | None:
        return format_id(self.epoch, self.offset) if self.epoch is not None else None


class RedisHistory:
    """Recovery from the Redis streams the ``redis`` backend writes."""

    #: The publisher numbers each message in the same script that publishes it.
    assigns_ids = False

    def append(self, message: Message) -> Message:
        """Messages arrive numbered; nothing to add."""
        return message

    def prune(self) -> None:
        """Redis expires idle histories itself (``HISTORY_TTL``)."""

    def __init__(self, driver: RedisBackend) -> None:
        self.driver = driver

    async def read(self, channel: str, after: int) -> Window:
        """Return the channel's epoch, last offset and the stored entries after ``after``."""
        keys = self.driver.keys
        async with self.driver.session() as client:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hmget(keys.offsets(channel), "e", "o")
                pipe.xrange(
                    keys.history(channel),
                    min=f"{after + 1}-0",
                    max="+",
                    count=broadcasting_settings.HISTORY_SIZE + 1,
                )
                (epoch, offset), raw = await pipe.execute()
        if epoch is None:
            return Window(None, 0, [])
        epoch = epoch.decode() if isinstance(epoch, bytes) else epoch
        entries = []
        for entry_id, fields in raw:
            number = int(
                entry_id.split(b"-", 1)[0] if isinstance(entry_id, bytes) else entry_id.split("-", 1)[0]
            )
            raw_message = fields[b"m"] if b"m" in fields else fields["m"]
            payload = transport_payload(
                raw_message.decode() if isinstance(raw_message, bytes) else raw_message
            )
            payload["id"] = format_id(epoch, number)
            entries.append((number, payload))
        return Window(epoch, int(offset or 0), entries)

    async def head(self, channel: str) -> str | None:
        """The channel's newest id, or None when it has no history."""
        async with self.driver.session() as client:
            epoch, offset = await client.hmget(self.driver.keys.offsets(channel), "e", "o")
        if epoch is None:
            return None
        return format_id(epoch.decode() if isinstance(epoch, bytes) else epoch, int(offset or 0))

    async def recover(self, channel: str, since: str) -> Recovery:
        position = parse_id(since)
        if position is None:
            return Recovery.failed("malformed last_id")
        epoch, offset = position
        window = await self.read(channel, offset)
        current = window.current_id
        if window.epoch is None:
            return Recovery.failed("no history for this channel")
        if window.epoch != epoch:
            return Recovery.failed("history epoch changed", current)
        if offset > window.offset:
            return Recovery.failed("last_id is ahead of the channel", current)
        missed = window.offset - offset
        entries = [e for e in window.entries if e[0] <= window.offset]
        if missed and (len(entries) < missed or entries[0][0] != offset + 1):
            return Recovery.failed("messages were trimmed from the history", current)
        return Recovery([Message.from_transport(p) for _, p in entries[:missed]], True, "", current)
