"""Cache channels on subscribe: the last event right after the subscription answer, or a miss.

The consumers call ``hub.send_cached(conn, channel)`` once the subscription's answer is queued
(Pusher: ``pusher_internal:subscription_succeeded``; native: ``subscribed``). The client then
gets the channel's cached event, encoded for its protocol, or a cache miss (Pusher:
``pusher:cache_miss``; native: a ``cache_miss`` frame), and ``on_cache_miss(channel)`` runs.

While a store that waits on I/O (Redis) is read, live messages for this connection wait in a
buffer the hub fills (as for recovery, ``Hub.hold_live``), so the cached event comes first and
a live message that is also the cached one is not sent twice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..backends.cache import is_cache_channel

if TYPE_CHECKING:
    from ..messages import Message
    from .connection import Connection
    from .hub import Hub

logger = logging.getLogger("django_broadcasting.server")

__all__ = ["on_cache_miss", "send_cached"]


def on_cache_miss(channel: str) -> None:
    """Called on the server's event loop when a subscriber finds cache channel ``channel`` empty.

    ``channel`` is the hub name (canonical, with ``#app-<id>:`` for an app other than the default
    one): the ``cache_miss`` webhook and signal go out (queued; never waits on the network).
    """
    from ..webhooks import cache_miss

    cache_miss(channel)


def _same(a: Message, b: Message) -> bool:
    if a.id is not None and b.id is not None:
        return a.id == b.id
    return a.timestamp == b.timestamp and a.event == b.event and a.data_json == b.data_json


def _missed(hub: Hub, conn: Connection, channel: str) -> None:
    conn.push(conn.protocol.cache_miss(channel))
    try:
        on_cache_miss(channel)
    except Exception:  # noqa: BLE001 - a failing hook never costs the subscriber its subscription
        logger.exception("on_cache_miss failed for %s", channel)


async def send_cached(hub: Hub, conn: Connection, channel: str) -> None:
    """Send ``conn`` the cached event of ``channel`` (a cache channel it just joined), or a miss."""
    cache = hub.cache
    if cache is None or not is_cache_channel(channel):
        return
    subscribers = hub.subscribers.get(channel)
    if subscribers is None or conn not in subscribers:
        return
    if not cache.awaits:  # read in one step: no live message can slip in between
        message = await cache.get(channel)
        if message is None:
            _missed(hub, conn, channel)
        elif message.socket_id != conn.socket_id:
            conn.push(conn.protocol.encode(message))
        return

    buffer = hub.hold_live(conn, channel)
    failed = False
    message = None
    try:
        message = await cache.get(channel)
    except Exception as exc:  # noqa: BLE001 - e.g. Redis down: no cached event, the socket stays
        logger.warning("reading the cached event of %s failed: %r", channel, exc)
        failed = True
    finally:
        hub.release_live(conn, channel, buffer)
    # From here to the end nothing awaits until the socket is back among the subscribers.
    if conn.closed or channel not in conn.channels:
        await hub.forget_if_empty(channel)  # it left meanwhile, and may have been the last one
        return
    encode = conn.protocol.encode
    if not failed:
        if message is None:
            _missed(hub, conn, channel)
        elif message.socket_id != conn.socket_id and not any(_same(message, m) for m in buffer):
            conn.push(encode(message))
    for live in buffer:
        if live.socket_id != conn.socket_id:
            conn.push(encode(live))
    await hub.rejoin(conn, channel)
