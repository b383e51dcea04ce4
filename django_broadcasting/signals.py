"""Django signals sent by django-broadcasting.

Publishing side (sent by this package's own code):

* ``event_dispatched(sender=EventClass, event=event)``: an ``Event`` was dispatched with
  ``dispatch()`` / ``adispatch()``. Listeners registered with ``@listen`` and the broadcasting
  receiver are receivers of this signal.
* ``broadcast_sent(sender=DriverClass, driver=driver, messages=[Message, ...])``: a driver
  published messages (one per channel).

Server side (sent by the real-time server, ``django_broadcasting.server``):

* ``connection_opened(sender=ConsumerClass, socket_id=..., identity=...)`` / ``connection_closed(...)``
* ``subscribed(sender=ConsumerClass, socket_id=..., channel=...)`` / ``unsubscribed(...)``
* ``member_joined(sender=..., channel=..., member=...)`` / ``member_left(...)`` (presence channels)

Channel lifecycle, the in-process twins of the webhooks (``django_broadcasting.webhooks``), sent by
the server process that observed the change, once for the whole cluster (see docs/webhooks.md).
``channel`` is the canonical name (``orders.1``, ``presence.chat.1``) and ``event`` the webhook
event as Pusher's format has it (``{"name": "channel_occupied", "channel": "private-orders.1"}``):

* ``channel_occupied(sender=..., channel=..., event=...)``: the first subscriber anywhere joined.
* ``channel_vacated(sender=..., channel=..., event=...)``: the last subscriber anywhere left.
* ``client_event(sender=..., channel=..., event=...)``: a client event (whisper) on a private or
  presence channel; ``event`` has ``event``, ``data``, ``socket_id`` and, on presence, ``user_id``.
* ``cache_miss(sender=..., channel=..., event=...)``: a subscriber of a cache channel found no event
  kept (``django_broadcasting.webhooks.acache_miss``).

Receivers may be sync or async functions (Django 5+ signals run both). The server sends its
signals with ``asend_fast``: one async receiver is awaited directly, which is what Django's
``asend`` amounts to for it without the tasks its ``asyncio.gather`` creates (three per send, ~20%
of a socket's connect-and-subscribe CPU when measured); anything else goes through ``asend``.
The server guards each send with ``signal.receivers`` (any receiver connected at all): unlike
``has_listeners()``, which only counts receivers connected for every sender, it lets receivers
connected with ``sender=`` a consumer class be called.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

__all__ = [
    "event_dispatched",
    "broadcast_sent",
    "connection_opened",
    "connection_closed",
    "subscribed",
    "unsubscribed",
    "member_joined",
    "member_left",
    "channel_occupied",
    "channel_vacated",
    "client_event",
    "cache_miss",
    "asend_fast",
]

event_dispatched = Signal()
broadcast_sent = Signal()
connection_opened = Signal()
connection_closed = Signal()
subscribed = Signal()
unsubscribed = Signal()
member_joined = Signal()
member_left = Signal()
channel_occupied = Signal()
channel_vacated = Signal()
client_event = Signal()
cache_miss = Signal()


async def asend_fast(signal: Signal, sender: Any, **named: Any) -> list[tuple[Any, Any]]:
    """Send ``signal`` as ``signal.asend`` does, awaiting a lone async receiver in place.

    Sync receivers still run through ``asend`` (in a thread, via ``sync_to_async``), and several
    async receivers still run concurrently there.
    """
    if not signal.receivers:  # what asend checks first; callers guard with it too (no call at all)
        return []
    try:
        sync_receivers, async_receivers = signal._live_receivers(sender)
    except (AttributeError, TypeError, ValueError):  # another Django's internals: the public way
        return await signal.asend(sender, **named)
    if sync_receivers or len(async_receivers) != 1:
        return await signal.asend(sender, **named)
    receiver = async_receivers[0]
    return [(receiver, await receiver(signal=signal, sender=sender, **named))]
