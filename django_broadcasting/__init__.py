"""django-broadcasting: Laravel-style real-time broadcasting for Django, on Django Channels.

The public API is imported lazily so that ``import django_broadcasting`` never touches
settings (it is imported by ``INSTALLED_APPS`` before settings are ready)::

    from django_broadcasting import broadcast, Event, ShouldBroadcast, channel
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # fluent API and helpers
    "broadcast": "django_broadcasting.publishing",
    "broadcast_to_channel": "django_broadcasting.publishing",
    "broadcast_to_user": "django_broadcasting.publishing",
    "broadcast_to_organization": "django_broadcasting.publishing",
    "abroadcast_to_channel": "django_broadcasting.publishing",
    "abroadcast_to_user": "django_broadcasting.publishing",
    "abroadcast_to_organization": "django_broadcasting.publishing",
    "notify_user": "django_broadcasting.publishing",
    "anotify_user": "django_broadcasting.publishing",
    "system_alert": "django_broadcasting.publishing",
    "asystem_alert": "django_broadcasting.publishing",
    "broadcast_many": "django_broadcasting.publishing",
    "abroadcast_many": "django_broadcasting.publishing",
    "BroadcastFacade": "django_broadcasting.compat",
    "PendingBroadcast": "django_broadcasting.publishing",
    # events
    "Event": "django_broadcasting.events",
    "ShouldBroadcast": "django_broadcasting.events",
    "ShouldBroadcastNow": "django_broadcasting.events",
    "listen": "django_broadcasting.events",
    "Channel": "django_broadcasting.events",
    "PrivateChannel": "django_broadcasting.events",
    "PresenceChannel": "django_broadcasting.events",
    "EncryptedPrivateChannel": "django_broadcasting.events",
    # channels and authorization
    "channel": "django_broadcasting.authorization",
    # values and drivers
    "Message": "django_broadcasting.messages",
    "BaseDriver": "django_broadcasting.drivers.base",
    "Backend": "django_broadcasting.backends.base",
    "PublishReceipt": "django_broadcasting.backends.base",
    "get_driver": "django_broadcasting.drivers",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'django_broadcasting' has no attribute {name!r}")
    return getattr(import_module(module), name)
