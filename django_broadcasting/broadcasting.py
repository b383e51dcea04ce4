"""Publishing: ``apublish`` (the one core), the fluent ``PendingBroadcast``, the helpers and facade.

    broadcast().to_user(5).event("notification").with_data({"title": "Hi"}).send()
    await broadcast().channels(["admin", "moderators"]).event("alert").with_data(d).asend()
    broadcast_to_channel("general", "announcement", {"message": "..."})
    BroadcastFacade.notify_user(5, "Welcome!", "Your account is ready", "/dashboard")

A user's channel is ``user.{id}``, an organization's ``org.{id}``. Every sync function is a
shim over its ``a``-prefixed async twin. Messages are built (validated and encoded once)
and the driver resolved before anything is sent, so bad input never half-sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from time import perf_counter
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync

from .context import socket_id_from
from .drivers import get_driver
from .drivers.base import BaseDriver
from .events import channel_names
from .exceptions import InvalidMessage
from .messages import Message, utc_now_iso
from .metrics import observe_broadcast
from .signals import broadcast_sent
from .sync import sync_shim

__all__ = [
    "apublish",
    "publish",
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
    "BroadcastFacade",
]

#: Levels accepted by ``system_alert`` (and ``manage.py broadcast system:alert``).
ALERT_LEVELS = ("info", "warning", "error", "critical")
#: Channel ``system_alert`` publishes on: the admin channel (role ``admin`` may subscribe).
SYSTEM_ALERT_CHANNEL = "admin"


async def apublish(messages: Sequence[Message], driver: str | BaseDriver | None = None) -> list[Message]:
    """Hand built ``messages`` to ``driver`` (an alias, an instance, or the default) and send ``broadcast_sent``."""
    target = driver if isinstance(driver, BaseDriver) else get_driver(driver)
    started = perf_counter()
    await target.abroadcast(messages)
    observe_broadcast(perf_counter() - started, "publish")  # the broadcast_duration_seconds histogram
    await broadcast_sent.asend(sender=type(target), driver=target, messages=list(messages))
    return list(messages)


publish = sync_shim(apublish)


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


class PendingBroadcast:
    """A broadcast being built; nothing is sent until ``send()`` / ``asend()``.

    Each method adds to the broadcast and returns it, so calls chain.
    """

    def __init__(self) -> None:
        self._channels: list[str] = []
        self._event: str | None = None
        self._data: Any = None
        self._socket_id: str | None = None
        self._driver: str | BaseDriver | None = None
        self._skip = False

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
        """Set the payload (Laravel's ``.with``): a JSON-able value, or keyword fields merged into a dict."""
        if fields:
            if data is not None and not isinstance(data, dict):
                raise InvalidMessage("with_data() keyword fields need a dict payload.")
            data = {**(data or {}), **fields}
        self._data = data
        return self

    data = with_data
    with_ = with_data

    # -- how ----------------------------------------------------------------------------------
    def to_others(self, socket_id: Any = None) -> PendingBroadcast:
        """Skip the sender's socket: ``socket_id``, a request's ``X-Socket-ID``, or the current request's."""
        self._socket_id = socket_id_from(socket_id)
        return self

    def via(self, driver: str | BaseDriver) -> PendingBroadcast:
        """Publish through this driver alias (or instance) instead of the default."""
        self._driver = driver
        return self

    # -- send ---------------------------------------------------------------------------------
    def build(self) -> list[Message]:
        """Validate and return the messages, one per channel, without sending them."""
        if self._event is None:
            raise InvalidMessage("A broadcast needs an event name: call .event(name) before sending.")
        return Message.for_channels(self._channels, self._event, self._data, socket_id=self._socket_id)

    async def asend(self) -> list[Message]:
        """Publish the broadcast; return the messages sent (one per channel)."""
        if self._skip:
            return []
        messages = self.build()
        driver = self._driver if isinstance(self._driver, BaseDriver) else get_driver(self._driver)
        return await apublish(messages, driver)

    def send(self) -> list[Message]:
        """Sync shim over ``asend``."""
        return async_to_sync(self.asend)()

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
        return pending
    if args or kwargs:
        return _pending(*args, **kwargs)
    return pending


def _pending(
    channel: Any,
    event: str | None = None,
    data: Any = None,
    *,
    driver: str | BaseDriver | None = None,
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


# -- the helpers (sync shims over the async twins) --------------------------------------
async def abroadcast_to_channel(
    channel: str,
    event: str,
    data: Any = None,
    *,
    driver: str | BaseDriver | None = None,
    socket_id: Any = None,
) -> list[Message]:
    """Broadcast ``event`` with ``data`` on ``channel``."""
    return await _pending(channel, event, data, driver=driver, socket_id=socket_id).asend()


broadcast_to_channel = sync_shim(abroadcast_to_channel)


async def abroadcast_to_user(
    user_id: Any,
    event: str,
    data: Any = None,
    *,
    driver: str | BaseDriver | None = None,
    socket_id: Any = None,
) -> list[Message]:
    """Broadcast on the user's channel ``user.{id}``."""
    return await abroadcast_to_channel(user_channel(user_id), event, data, driver=driver, socket_id=socket_id)


broadcast_to_user = sync_shim(abroadcast_to_user)


async def abroadcast_to_organization(
    organization_id: Any,
    event: str,
    data: Any = None,
    *,
    driver: str | BaseDriver | None = None,
    socket_id: Any = None,
) -> list[Message]:
    """Broadcast on the organization's channel ``org.{id}``."""
    return await abroadcast_to_channel(
        organization_channel(organization_id), event, data, driver=driver, socket_id=socket_id
    )


broadcast_to_organization = sync_shim(abroadcast_to_organization)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidMessage(f"{what} must be a non-empty string.")
    return value


async def anotify_user(
    user_id: Any,
    title: str,
    message: str,
    action_url: str | None = None,
    *,
    driver: str | BaseDriver | None = None,
) -> list[Message]:
    """Send event ``notification`` on ``user.{id}`` with ``title``, ``message``, ``action_url``, ``timestamp``."""
    if action_url is not None and not isinstance(action_url, str):
        raise InvalidMessage("action_url must be a string or None.")
    data = {
        "title": _text(title, "title"),
        "message": _text(message, "message"),
        "action_url": action_url or None,
        "timestamp": utc_now_iso(),
    }
    return await abroadcast_to_user(user_id, "notification", data, driver=driver)


notify_user = sync_shim(anotify_user)


async def asystem_alert(
    level: str,
    message: str,
    action_required: bool = False,
    *,
    channel: str = SYSTEM_ALERT_CHANNEL,
    driver: str | BaseDriver | None = None,
) -> list[Message]:
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
    return await abroadcast_to_channel(channel, "system_alert", data, driver=driver)


system_alert = sync_shim(asystem_alert)


class BroadcastFacade:
    """The ``BroadcastFacade``: static entry points over the helpers above."""

    @staticmethod
    def to_user(user_id: Any) -> PendingBroadcast:
        return PendingBroadcast().to_user(user_id)

    @staticmethod
    def to_organization(organization_id: Any) -> PendingBroadcast:
        return PendingBroadcast().to_organization(organization_id)

    @staticmethod
    def channel(name: str) -> PendingBroadcast:
        return PendingBroadcast().channel(name)

    @staticmethod
    def channels(names: Iterable[str]) -> PendingBroadcast:
        return PendingBroadcast().channels(names)

    @staticmethod
    def event(event: Any) -> PendingBroadcast:
        """Start from a ``ShouldBroadcast`` event (like ``broadcast(event)``)."""
        return broadcast(event)

    notify_user = staticmethod(notify_user)
    anotify_user = staticmethod(anotify_user)
    system_alert = staticmethod(system_alert)
    asystem_alert = staticmethod(asystem_alert)
    broadcast_to_channel = staticmethod(broadcast_to_channel)
    abroadcast_to_channel = staticmethod(abroadcast_to_channel)
    broadcast_to_user = staticmethod(broadcast_to_user)
    abroadcast_to_user = staticmethod(abroadcast_to_user)
