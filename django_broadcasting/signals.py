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

Receivers may be sync or async functions (Django 5+ signals run both).
"""

from __future__ import annotations

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
]

event_dispatched = Signal()
broadcast_sent = Signal()
connection_opened = Signal()
connection_closed = Signal()
subscribed = Signal()
unsubscribed = Signal()
member_joined = Signal()
member_left = Signal()
