"""Cache channels in Redis: reading back the last event the publish script kept.

The ``redis`` backend's publish script ``SET``s ``{prefix}bc:cache:{channel}`` to the published
``"<id> <message>"`` (``Message.transport_text``) of every server event on a cache channel, with ``PX`` = ``CACHE_CHANNEL_TTL``,
atomically with the ``PUBLISH``: every server of the cluster reads the same last event, and
Redis expires it. The hub only reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...messages import Message, transport_payload

if TYPE_CHECKING:
    from . import RedisBackend


class RedisChannelCache:
    """The cluster-wide last event of each cache channel."""

    records = False  # the publishers write it, in the publish script
    awaits = True

    def __init__(self, driver: RedisBackend) -> None:
        self.driver = driver
        self.reads = 0
        self.misses = 0

    def record(self, message: Message) -> None:
        """Written by the publish script; nothing to do here."""

    async def get(self, channel: str) -> Message | None:
        """Return the channel's cached event, or None. Redis errors propagate (the caller decides)."""
        async with self.driver.session() as client:
            raw = await client.get(self.driver.keys.cache(channel))
        self.reads += 1
        if raw is None:
            self.misses += 1
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        message_id, _, body = text.partition(" ")
        payload = transport_payload(body)
        if message_id:
            payload["id"] = message_id
        return Message.from_publisher(payload)

    def prune(self) -> None:
        """Redis expires cached events itself."""

    def stats(self) -> dict[str, Any]:
        return {"reads": self.reads, "misses": self.misses, "store": "redis"}
