"""Cache channels: the last event of each ``cache-*`` channel, for the next subscriber.

Pusher's cache channels: ``cache-X`` (public), ``private-cache-X``, ``presence-cache-X`` and
``private-encrypted-cache-X`` remember the last event published on them for
``CACHE_CHANNEL_TTL`` seconds (Pusher: 30 minutes); a new subscriber gets it right after its
subscription succeeded, or ``pusher:cache_miss`` when there is none. Client events and presence
member events are never cached, only what a publisher (server side) sent.

A backend's ``create_cache()`` gives the hub its store:

- ``MemoryChannelCache`` (the default): this process's memory, written by the hub as it
  delivers (``records`` is True). With a single server process that is every broadcast; with a
  cross-process Channels layer it is what this process heard (channels it had subscribers on).
  At most ``MAX_CHANNELS`` channels and ``CACHE_CHANNEL_MAX_BYTES`` of payloads are kept; the
  least recently written channel goes first.
- The redis backend's ``RedisChannelCache``: one key per channel (``{prefix}bc:cache:{channel}``),
  written by the publish script itself with a ``PX`` expiry, atomically with the ``PUBLISH``, so
  every server of the cluster reads the same last event.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

from ..messages import APP_NAMESPACE, app_local_name

if TYPE_CHECKING:
    from ..messages import Message

__all__ = ["CACHE_PREFIXES", "ChannelCache", "MemoryChannelCache", "cacheable", "is_cache_channel"]

#: Canonical names of cache channels start with one of these (``private-cache-X`` is ``cache-X``,
#: ``presence-cache-X`` is ``presence.cache-X``).
CACHE_PREFIXES = ("cache-", "presence.cache-", "private-encrypted-cache-")
_NOT_CACHED_ORIGINS = frozenset({"presence", "whisper"})


def is_cache_channel(canonical: str) -> bool:
    """Return whether the canonical (or hub) channel name is a cache channel (of any app)."""
    return canonical.startswith(CACHE_PREFIXES) or (
        canonical.startswith(APP_NAMESPACE) and app_local_name(canonical).startswith(CACHE_PREFIXES)
    )


def cacheable(message: Message) -> bool:
    """Return whether ``message`` becomes its channel's cached event (server events on cache channels)."""
    return (
        is_cache_channel(message.channel)
        and not message.event.startswith("client-")
        and message.origin not in _NOT_CACHED_ORIGINS
    )


class ChannelCache(Protocol):
    """What the hub needs from a backend's cache of last events."""

    #: True when the hub writes the store as it delivers (False: the publishers write it).
    records: bool
    #: True when ``get`` waits on I/O (live messages are then held back while it runs).
    awaits: bool

    def record(self, message: Message) -> None: ...
    async def get(self, channel: str) -> Message | None: ...
    def prune(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...


class MemoryChannelCache:
    """The last event of each cache channel in this process, with a TTL and a bound on channels."""

    records = True
    awaits = False

    def __init__(self, ttl: float, max_channels: int = 0, max_bytes: int = 0) -> None:
        self.ttl = ttl
        self.max_channels = max_channels  # 0: no bound but the TTL
        self.max_bytes = max_bytes  # 0: no bound but the TTL
        self._entries: OrderedDict[str, tuple[float, Message]] = OrderedDict()
        self.bytes = 0
        self.evicted = 0

    def record(self, message: Message) -> None:
        entries = self._entries
        old = entries.get(message.channel)
        if old is not None:
            self.bytes -= len(old[1].data_json)
        entries[message.channel] = (time.monotonic() + self.ttl, message)
        entries.move_to_end(message.channel)
        self.bytes += len(message.data_json)
        while entries and (
            (self.max_channels and len(entries) > self.max_channels)
            or (self.max_bytes and self.bytes > self.max_bytes)
        ):
            self._drop(next(iter(entries)))
            self.evicted += 1

    def _drop(self, channel: str) -> None:
        _, message = self._entries.pop(channel)
        self.bytes -= len(message.data_json)

    def peek(self, channel: str) -> Message | None:
        """Return the channel's cached event, or None (synchronous: nothing else runs meanwhile)."""
        entry = self._entries.get(channel)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._drop(channel)
            return None
        return entry[1]

    async def get(self, channel: str) -> Message | None:
        return self.peek(channel)

    def prune(self) -> None:
        now = time.monotonic()
        for channel in [c for c, (expires, _) in self._entries.items() if expires <= now]:
            self._drop(channel)

    def stats(self) -> dict[str, Any]:
        return {"channels": len(self._entries), "bytes": self.bytes, "evicted": self.evicted}
