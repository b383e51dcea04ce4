"""Events: ``Event``, the ``ShouldBroadcast`` mixin, ``ShouldBroadcastNow`` and ``@listen``.

``event.dispatch()`` / ``await event.adispatch()`` send the ``event_dispatched`` signal. Listeners
registered with ``@listen(OrderShipped)`` or ``@listen("OrderShipped")`` are receivers of that
signal, and so is broadcasting: an event that is ``ShouldBroadcast`` is published on the
channels of ``broadcast_on()``.

``ShouldBroadcast`` events go through Django's Tasks framework (``django.tasks`` on Django 6,
the ``django-tasks`` backport on 5.2) on ``broadcast_connection`` / ``broadcast_queue``; the
default backend runs the task at once. ``ShouldBroadcastNow`` events are never queued.
``after_commit = True`` waits for the current transaction to commit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from asgiref.sync import async_to_sync, iscoroutinefunction
from django.db import transaction

from .signals import event_dispatched

if TYPE_CHECKING:
    from .messages import Message

__all__ = [
    "Event",
    "ShouldBroadcast",
    "ShouldBroadcastNow",
    "listen",
    "unlisten",
    "channel_names",
    "Channel",
    "PrivateChannel",
    "PresenceChannel",
]

logger = logging.getLogger("django_broadcasting.events")

F = TypeVar("F", bound=Callable[..., Any])

# Active EventFake objects (django_broadcasting.testing); the newest one sees dispatches first.
_fakes: list[Any] = []


class Channel:
    """A channel for ``broadcast_on()``, like Laravel's ``Channel``; ``name`` is what is published."""

    prefix = ""

    def __init__(self, name: str) -> None:
        self.name = f"{self.prefix}{name}"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Channel) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class PrivateChannel(Channel):
    """``PrivateChannel("orders.1")``: Laravel's ``private-orders.1``, which is the channel ``orders.1``."""

    prefix = "private-"


class EncryptedPrivateChannel(Channel):
    """``EncryptedPrivateChannel("user.5")``: Laravel's ``private-encrypted-user.5``, an end-to-end
    encrypted channel of its own; its events are sealed at publish time (see ``encryption``)."""

    prefix = "private-encrypted-"


class PresenceChannel(Channel):
    """``PresenceChannel("chat.1")``: Laravel's ``presence-chat.1``, which is the channel ``presence.chat.1``."""

    prefix = "presence-"


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [value]
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return [name]
    if isinstance(value, Iterable):
        return [name for item in value for name in _flatten(item)]
    return [value]  # not a name: canonical_name() raises InvalidChannelName naming it


def channel_names(value: Any) -> list[str]:
    """Return the channel names of ``value``: a name, an object with ``.name``, or an iterable of them.

    Names are canonical: ``private-X`` is published on ``X`` and ``presence-X`` on ``presence.X``,
    the channels Laravel Echo's ``private('X')`` / ``join('X')`` subscribers are on.
    Names from ``pusher_apps.app_channel()`` (another Pusher app's channels) are kept as they are.
    """
    from .authorization import canonical_name
    from .messages import APP_NAMESPACE

    # A name made by ``pusher_apps.app_channel()`` is already another app's channel: server-side
    # code may publish there (clients never can: ``canonical_name`` refuses such names).
    return [
        name if isinstance(name, str) and name.startswith(APP_NAMESPACE) else canonical_name(name)
        for name in _flatten(value)
    ]


def _jsonable(value: Any) -> Any:
    """Turn model instances and querysets (also inside dicts and lists) into plain data."""
    from django.db.models import Model, QuerySet

    if isinstance(value, Model):
        from django.core import serializers

        serialized = serializers.serialize("python", [value])[0]
        return {value._meta.pk.attname: serialized["pk"], **serialized["fields"]}
    if isinstance(value, QuerySet):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class _Dispatchable:
    """What every event can do; shared by ``Event`` and ``ShouldBroadcast`` so either may come first."""

    def __init__(self, **data: Any) -> None:
        for key, value in data.items():
            setattr(self, key, value)

    def event_name(self) -> str:
        """Return the event's name; the class name by default."""
        return type(self).__name__

    def to_json(self) -> Any:
        """Return the event's data: dataclass fields, or the public instance attributes.

        Model instances among them become dicts of their fields (and querysets lists of those),
        the way Laravel serializes an event's Eloquent models.
        """
        if dataclasses.is_dataclass(self) and not isinstance(self, type):
            items = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        else:
            items = vars(self)
        return {k: _jsonable(v) for k, v in items.items() if not k.startswith("_")}

    async def adispatch(self) -> None:
        """Send ``event_dispatched`` for this event (listeners, then broadcasting, run)."""
        for fake in reversed(_fakes):
            if fake.intercepts(self):
                fake.record(self)
                return
        await event_dispatched.asend(sender=type(self), event=self)

    def dispatch(self) -> None:
        """Sync shim over ``adispatch``."""
        async_to_sync(self.adispatch)()


class Event(_Dispatchable):
    """Base class of application events. Subclass it (a dataclass works too)::

    @dataclass
    class UserRegistered(Event):
        user_id: int
    """


class ShouldBroadcast(_Dispatchable):
    """Mixin: broadcast the event when it is dispatched.

    Override ``broadcast_on()``; the rest has defaults. Class attributes:
    ``broadcast_driver`` (driver alias, default ``DEFAULT_DRIVER``), ``broadcast_connection``
    (task backend alias), ``broadcast_queue`` (task queue name), ``tries`` and ``timeout``
    (seconds per attempt) for queued broadcasts, ``after_commit``.
    """

    broadcast_driver: str | None = None
    broadcast_connection: str | None = None
    broadcast_queue: str | None = None
    tries: int = 1
    timeout: float | None = None
    after_commit: bool = False

    def broadcast_on(self) -> Any:
        """Return the channel name(s) to broadcast on."""
        raise NotImplementedError(f"{type(self).__name__} must define broadcast_on()")

    def broadcast_as(self) -> str:
        """Return the event name clients receive; ``event_name()`` by default."""
        return self.event_name()

    def broadcast_with(self) -> Any:
        """Return the data clients receive; ``to_json()`` by default."""
        return self.to_json()

    def broadcast_when(self) -> bool:
        """Return False to skip broadcasting this instance."""
        return True

    def to_others(self, socket_id: Any = None) -> Any:
        """Exclude a socket (the current request's ``X-Socket-ID`` by default); return ``self``."""
        from .context import socket_id_from

        object.__setattr__(self, "_socket_id", socket_id_from(socket_id))
        return self

    def broadcast_messages(self) -> list[Message]:
        """Build (and validate) the messages this event publishes, one per channel."""
        from .messages import Message

        return Message.for_channels(
            channel_names(self.broadcast_on()),
            self.broadcast_as(),
            self.broadcast_with(),
            socket_id=getattr(self, "_socket_id", None),
        )


class ShouldBroadcastNow(ShouldBroadcast):
    """Like ``ShouldBroadcast`` but always published at once, never through a task queue."""


def _matches(event: Any, targets: tuple[type | str, ...]) -> bool:
    if not targets:
        return True
    for target in targets:
        if isinstance(target, str):
            if target == type(event).__name__ or target == event.event_name():
                return True
        elif isinstance(event, target):
            return True
    return False


def listen(*events: type | str, dispatch_uid: str | None = None) -> Callable[[F], F]:
    """Register the decorated function as a listener of ``events`` (classes or names; none = all).

    The listener is called with the event; it may be sync or ``async def``::

        @listen(UserRegistered)
        def send_welcome_email(event): ...
    """
    for target in events:
        if not (isinstance(target, str) or isinstance(target, type)):
            raise TypeError(
                f"listen() takes event classes or names, not {target!r}; write @listen(EventClass)."
            )

    def decorator(func: F) -> F:
        if iscoroutinefunction(func):

            async def receiver(sender: Any, event: Any, **kwargs: Any) -> Any:
                if _matches(event, events):
                    return await func(event)
                return None
        else:

            def receiver(sender: Any, event: Any, **kwargs: Any) -> Any:
                if _matches(event, events):
                    return func(event)
                return None

        uid = dispatch_uid or f"{func.__module__}.{func.__qualname__}"
        event_dispatched.connect(receiver, weak=False, dispatch_uid=uid)
        func._broadcasting_dispatch_uid = uid  # type: ignore[attr-defined]
        return func

    return decorator


def unlisten(func: Callable[..., Any]) -> bool:
    """Disconnect a function registered with ``@listen``; return True if it was connected."""
    uid = getattr(func, "_broadcasting_dispatch_uid", None)
    return bool(uid) and event_dispatched.disconnect(dispatch_uid=uid)


def broadcast_event(event: ShouldBroadcast) -> None:
    """Publish a ``ShouldBroadcast`` event now, through a task, or after commit, as it asks.

    Messages are built (and validated) here, in the dispatching context, so bad data fails the
    ``dispatch()`` call and nothing is half-sent.
    """
    if not event.broadcast_when():
        return
    from .conf import broadcasting_settings
    from .drivers import get_driver

    messages = event.broadcast_messages()
    for message in messages:  # shown as "event" in the admin's debug console
        if message.origin is None:
            message.origin = "event"
    alias = event.broadcast_driver or broadcasting_settings.default_driver_alias()
    get_driver(alias)  # an unknown alias fails now, not later in a task
    if not isinstance(event, ShouldBroadcastNow):
        from .tasks import broadcast_task_for

        # A queue or task backend that TASKS does not allow fails now, not at commit time.
        broadcast_task_for(event.broadcast_queue, event.broadcast_connection)

    def send() -> None:
        if isinstance(event, ShouldBroadcastNow):
            from .publishing import publish

            publish(messages, alias)
        else:
            from .tasks import enqueue_broadcast

            enqueue_broadcast(
                messages,
                alias,
                queue=event.broadcast_queue,
                backend=event.broadcast_connection,
                tries=event.tries,
                timeout=event.timeout,
            )

    if event.after_commit:
        transaction.on_commit(send)
    else:
        send()


def _broadcast_receiver(sender: Any, event: Any, **kwargs: Any) -> None:
    # Sync on purpose: broadcast_on()/broadcast_with() may use the ORM, and on_commit must run
    # in the dispatching thread's connection; Signal.asend runs sync receivers there.
    if isinstance(event, ShouldBroadcast):
        broadcast_event(event)


event_dispatched.connect(
    _broadcast_receiver, weak=False, dispatch_uid="django_broadcasting.broadcast_receiver"
)
