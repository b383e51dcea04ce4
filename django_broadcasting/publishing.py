"""Publishing: ``apublish`` / ``publish`` (the core), the fluent ``PendingBroadcast`` and the helpers.

The one documented way to publish is ``broadcast(...)...send()`` (or ``asend()``), plus the
Laravel-style helpers (``broadcast_to_channel``, ``broadcast_to_user``, ...). Older spellings
(``.data()``, ``.with_()``, ``BroadcastFacade``) live in ``compat.py``. This module was
``django_broadcasting.broadcasting``, which still imports as this very module.

    broadcast().to_user(5).event("notification").with_data({"title": "Hi"}).send()
    await broadcast().channels(["admin", "moderators"]).event("alert").with_data(d).asend()
    broadcast_to_channel("general", "announcement", {"message": "..."})
    broadcast_many([("general", "tick", {"n": 1}), ("user.5", "notification", {"title": "Hi"})])
    notify_user(5, "Welcome!", "Your account is ready", "/dashboard")

A user's channel is ``user.{id}``, an organization's ``org.{id}``. Messages are built
(validated and encoded once) and the backend resolved before anything is sent, so bad input
never half-sends. Each helper is written once, as the function that builds its messages;
its async twin awaits ``apublish`` and its sync twin calls ``publish``, which hands the
messages to the backend's sync side without an event loop or a thread hop per call (the
redis backend keeps a blocking client for that).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from time import perf_counter
from typing import Any
from uuid import UUID

from .backends.base import Backend, PublishReceipt
from .compat import PendingBroadcastAliases
from .context import get_origin, socket_id_from
from .drivers import get_driver
from .encryption import seal_messages
from .events import channel_names
from .exceptions import InvalidMessage
from .messages import Message, utc_now_iso
from .metrics import observe_broadcast
from .signals import broadcast_sent

__all__ = [
    "apublish",
    "publish",
    "Published",
    "broadcast_many",
    "abroadcast_many",
    "PendingBroadcast",
    "broadcast",
    "user_channel",
    "organization_channel",
    "broadcast_to_channel",
    "abroadcast_to_channel",
    "broadcast_to_user",
    "abroadcast_to_user",
    "broadcast_to_organization",
    "abroadcast_to_organization",
    "notify_user",
    "anotify_user",
    "system_alert",
    "asystem_alert",
    "ALERT_LEVELS",
    "SYSTEM_ALERT_CHANNEL",
]

#: Levels accepted by ``system_alert`` (and ``manage.py broadcast system:alert``).
ALERT_LEVELS = ("info", "warning", "error", "critical")
#: Channel ``system_alert`` publishes on: the admin channel (role ``admin`` may subscribe).
SYSTEM_ALERT_CHANNEL = "admin"

DriverArg = str | Backend | None


class Published(list):
    """The messages a publish sent (one per channel), with the backend's ``receipt``."""

    receipt: PublishReceipt

    def __init__(self, messages: Iterable[Message], receipt: PublishReceipt) -> None:
        super().__init__(messages)
        self.receipt = receipt


def _backend(driver: DriverArg) -> Backend:
    return driver if isinstance(driver, Backend) else get_driver(driver)


def _label(messages: Sequence[Message]) -> None:
    # The origin label of this context (``broadcast_origin``) for the admin's console: one
    # context-variable read per publish; messages are touched only when a label is set.
    origin = get_origin()
    if origin is not None:
        for message in messages:
            if message.origin is None:
                message.origin = origin


async def apublish(messages: Sequence[Message], driver: DriverArg = None) -> Published:
    """Hand built ``messages`` to ``driver`` (an alias, an instance, or the default backend).

    Events on end-to-end encrypted channels (``private-encrypted-*``) are sealed here, once each.
    Return the messages, with the backend's receipt as ``.receipt``; send ``broadcast_sent``.
    Raise ``TransportError`` when nothing accepted them.
    """
    target = _backend(driver)
    if not target.accepts_plaintext:
        messages = seal_messages(messages)
    _label(messages)
    started = perf_counter()
    receipt = await target.apublish(messages)
    observe_broadcast(perf_counter() - started, "publish")  # the broadcast_duration_seconds histogram
    if broadcast_sent.has_listeners():
        await broadcast_sent.asend(sender=type(target), driver=target, messages=list(messages))
    return Published(messages, receipt)


def publish(messages: Sequence[Message], driver: DriverArg = None) -> Published:
    """Sync twin of ``apublish``: the backend's sync side, no event loop unless a receiver needs one."""
    target = _backend(driver)
    if not target.accepts_plaintext:
        messages = seal_messages(messages)
    _label(messages)
    started = perf_counter()
    receipt = target.publish(messages)
    observe_broadcast(perf_counter() - started, "publish")
    if broadcast_sent.has_listeners():
        broadcast_sent.send(sender=type(target), driver=target, messages=list(messages))
    return Published(messages, receipt)


def _publishing_twins(
    build: Callable[..., tuple[list[Message], DriverArg]], name: str
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Return ``(a<name>, <name>)``: the async and sync helpers over one message builder."""

    @functools.wraps(build)
    async def ahelper(*args: Any, **kwargs: Any) -> Published:
        messages, driver = build(*args, **kwargs)
        return await apublish(messages, driver)

    @functools.wraps(build)
    def helper(*args: Any, **kwargs: Any) -> Published:
        messages, driver = build(*args, **kwargs)
        return publish(messages, driver)

    for function, function_name in ((ahelper, "a" + name), (helper, name)):
        function.__name__ = function.__qualname__ = function_name
        function.__annotations__ = {**build.__annotations__, "return": "Published"}
    helper.__doc__ = f"Sync twin of ``a{name}``: {(build.__doc__ or '').strip()}"
    return ahelper, helper


def _many(items: Iterable[Any], *, driver: DriverArg = None) -> tuple[list[Message], DriverArg]:
    """Publish many broadcasts at once: pipelined in one round trip where the backend can.

    Each item is a built ``Message``, a ``(channel_or_channels, event, data)`` tuple, or a
    mapping with ``channel`` or ``channels``, ``event``, optional ``data`` and ``socket_id``.
    Every item is validated before anything is sent.
    """
    messages: list[Message] = []
    for index, item in enumerate(items):
        if isinstance(item, Message):
            messages.append(item)
            continue
        if isinstance(item, Mapping):
            where = item.get("channels", item.get("channel"))
            event, data, socket_id = item.get("event"), item.get("data"), item.get("socket_id")
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            where, event, data, socket_id = item[0], item[1], item[2] if len(item) == 3 else None, None
        else:
            raise InvalidMessage(
                f"broadcast_many() item {index} must be a Message, a (channel, event, data) tuple or a dict."
            )
        if not isinstance(event, str):
            raise InvalidMessage(f"broadcast_many() item {index} needs an event name.")
        exclude = socket_id_from(socket_id) if socket_id is not None else None
        messages += Message.for_channels(channel_names(where), event, data, socket_id=exclude)
    if not messages:
        raise InvalidMessage("broadcast_many() needs at least one broadcast.")
    return messages, driver


abroadcast_many, broadcast_many = _publishing_twins(_many, "broadcast_many")


def user_channel(user_id: Any) -> str:
    """Return the private channel of a user: ``user.{id}``."""
    return f"user.{_identifier(user_id, 'user id')}"


def organization_channel(organization_id: Any) -> str:
    """Return the channel of an organization: ``org.{id}``."""
    return f"org.{_identifier(organization_id, 'organization id')}"


def _identifier(value: Any, what: str) -> str:
    pk = getattr(value, "pk", value)  # a model instance stands for its primary key
    if isinstance(pk, bool) or not isinstance(pk, (str, int, UUID)) or str(pk) == "":
        raise InvalidMessage(f"A {what} must be a non-empty string, an integer or a UUID, not {value!r}.")
    return str(pk)


class PendingBroadcast(PendingBroadcastAliases):
    """A broadcast being built; nothing is sent until ``send()`` / ``asend()``.

    Each method adds to the broadcast and returns it, so calls chain.
    """

    def __init__(self) -> None:
        self._channels: list[str] = []
        self._event: str | None = None
        self._data: Any = None
        self._socket_id: str | None = None
        self._driver: DriverArg = None
        self._skip = False
        self._origin: str | None = None

    # -- where --------------------------------------------------------------------------------
    def channel(self, name: Any) -> PendingBroadcast:
        """Add one channel (a name or an object with ``.name``)."""
        self._channels.extend(channel_names(name))
        return self

    def channels(self, names: Iterable[Any]) -> PendingBroadcast:
        """Add several channels."""
        if isinstance(names, str):
            names = [names]
        self._channels.extend(channel_names(list(names)))
        return self

    def to_user(self, user_id: Any) -> PendingBroadcast:
        """Add the user's channel ``user.{id}`` (a user instance works too)."""
        self._channels.append(user_channel(user_id))
        return self

    def to_organization(self, organization_id: Any) -> PendingBroadcast:
        """Add the organization's channel ``org.{id}``."""
        self._channels.append(organization_channel(organization_id))
        return self

    # -- what ---------------------------------------------------------------------------------
    def event(self, name: str) -> PendingBroadcast:
        """Set the event name clients receive."""
        self._event = name
        return self

    def with_data(self, data: Any = None, **fields: Any) -> PendingBroadcast:
        """Set the payload (``.with`` in Laravel): a JSON-able value, or keyword fields merged into a dict."""
        if fields:
            if data is not None and not isinstance(data, dict):
                raise InvalidMessage("with_data() keyword fields need a dict payload.")
            data = {**(data or {}), **fields}
        self._data = data
        return self

    # -- how ----------------------------------------------------------------------------------
    def to_others(self, socket_id: Any = None) -> PendingBroadcast:
        """Skip the sender's socket: ``socket_id``, a request's ``X-Socket-ID``, or the current request's."""
        self._socket_id = socket_id_from(socket_id)
        return self

    def via(self, driver: str | Backend) -> PendingBroadcast:
        """Publish through this driver alias (or instance) instead of the default."""
        self._driver = driver
        return self

    # -- send ---------------------------------------------------------------------------------
    def build(self) -> list[Message]:
        """Validate and return the messages, one per channel, without sending them."""
        if self._event is None:
            raise InvalidMessage("A broadcast needs an event name: call .event(name) before sending.")
        messages = Message.for_channels(self._channels, self._event, self._data, socket_id=self._socket_id)
        if self._origin is not None:
            for message in messages:
                message.origin = self._origin
        return messages

    def _outgoing(self) -> tuple[list[Message], DriverArg]:
        return ([], None) if self._skip else (self.build(), _backend(self._driver))

    async def asend(self) -> list[Message]:
        """Publish the broadcast; return the messages sent (one per channel, receipt as ``.receipt``)."""
        messages, driver = self._outgoing()
        return await apublish(messages, driver) if messages else []

    def send(self) -> list[Message]:
        """Sync twin of ``asend`` (no event loop: the backend's sync side)."""
        messages, driver = self._outgoing()
        return publish(messages, driver) if messages else []

    def __repr__(self) -> str:
        return f"<PendingBroadcast {self._event!r} on {self._channels!r}>"


def broadcast(*args: Any, **kwargs: Any) -> PendingBroadcast:
    """Start a broadcast: ``broadcast()``, ``broadcast(channel, event, data=None)`` or ``broadcast(event_obj)``.

    With a ``ShouldBroadcast`` instance, its channels, name, data, driver and ``to_others()``
    are taken from it (and ``broadcast_when()`` is honoured); listeners are not called and it
    is never queued. Call ``.send()`` / ``await .asend()`` to publish.
    """
    pending = PendingBroadcast()
    if len(args) == 1 and not kwargs and not isinstance(args[0], str):
        event = args[0]
        if not callable(getattr(event, "broadcast_on", None)):
            raise InvalidMessage(
                f"broadcast() takes a ShouldBroadcast event or (channel, event, data), not {event!r}."
            )
        if not event.broadcast_when():
            pending._skip = True
            return pending
        pending.channel(event.broadcast_on()).event(event.broadcast_as()).with_data(event.broadcast_with())
        pending._socket_id = getattr(event, "_socket_id", None)
        pending._driver = getattr(event, "broadcast_driver", None)
        pending._origin = "event"
        return pending
    if args or kwargs:
        return _pending(*args, **kwargs)
    return pending


def _pending(
    channel: Any,
    event: str | None = None,
    data: Any = None,
    *,
    driver: DriverArg = None,
    socket_id: Any = None,
) -> PendingBroadcast:
    pending = PendingBroadcast().channel(channel).with_data(data)
    if event is not None:
        pending.event(event)
    if driver is not None:
        pending.via(driver)
    if socket_id is not None:
        pending.to_others(socket_id)
    return pending


# -- the helpers: one message builder each, published by an async and a sync twin -----------------
def _to_channel(
    channel: str,
    event: str,
    data: Any = None,
    *,
    driver: DriverArg = None,
    socket_id: Any = None,
) -> tuple[list[Message], DriverArg]:
    """Broadcast ``event`` with ``data`` on ``channel``."""
    return _pending(channel, event, data, driver=driver, socket_id=socket_id)._outgoing()


abroadcast_to_channel, broadcast_to_channel = _publishing_twins(_to_channel, "broadcast_to_channel")


def _to_user(
    user_id: Any,
    event: str,
    data: Any = None,
    *,
    driver: DriverArg = None,
    socket_id: Any = None,
) -> tuple[list[Message], DriverArg]:
    """Broadcast on the user's channel ``user.{id}``."""
    return _to_channel(user_channel(user_id), event, data, driver=driver, socket_id=socket_id)


abroadcast_to_user, broadcast_to_user = _publishing_twins(_to_user, "broadcast_to_user")


def _to_organization(
    organization_id: Any,
    event: str,
    data: Any = None,
    *,
    driver: DriverArg = None,
    socket_id: Any = None,
) -> tuple[list[Message], DriverArg]:
    """Broadcast on the organization's channel ``org.{id}``."""
    return _to_channel(organization_channel(organization_id), event, data, driver=driver, socket_id=socket_id)


abroadcast_to_organization, broadcast_to_organization = _publishing_twins(
    _to_organization, "broadcast_to_organization"
)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidMessage(f"{what} must be a non-empty string.")
    return value


def _notify_user(
    user_id: Any,
    title: str,
    message: str,
    action_url: str | None = None,
    *,
    driver: DriverArg = None,
) -> tuple[list[Message], DriverArg]:
    """Send event ``notification`` on ``user.{id}`` with ``title``, ``message``, ``action_url``, ``timestamp``."""
    if action_url is not None and not isinstance(action_url, str):
        raise InvalidMessage("action_url must be a string or None.")
    data = {
        "title": _text(title, "title"),
        "message": _text(message, "message"),
        "action_url": action_url or None,
        "timestamp": utc_now_iso(),
    }
    return _to_user(user_id, "notification", data, driver=driver)


anotify_user, notify_user = _publishing_twins(_notify_user, "notify_user")


def _system_alert(
    level: str,
    message: str,
    action_required: bool = False,
    *,
    channel: str = SYSTEM_ALERT_CHANNEL,
    driver: DriverArg = None,
) -> tuple[list[Message], DriverArg]:
    """Send event ``system_alert`` on the ``admin`` channel with ``level``, ``message``,
    ``action_required`` and ``timestamp``. ``level`` is one of ``ALERT_LEVELS``."""
    if not isinstance(level, str) or level.lower() not in ALERT_LEVELS:
        raise InvalidMessage(f"Alert level must be one of {', '.join(ALERT_LEVELS)}, not {level!r}.")
    if not isinstance(action_required, bool):
        raise InvalidMessage("action_required must be True or False.")
    data = {
        "level": level.lower(),
        "message": _text(message, "message"),
        "action_required": action_required,
        "timestamp": utc_now_iso(),
    }
    return _to_channel(channel, "system_alert", data, driver=driver)


asystem_alert, system_alert = _publishing_twins(_system_alert, "system_alert")


def __getattr__(name: str) -> Any:
    if name == "BroadcastFacade":  # moved to compat.py; still importable from here
        from .compat import BroadcastFacade

        return BroadcastFacade
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
