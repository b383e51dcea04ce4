"""System checks (``manage.py check``) for risky or broken broadcasting setups.

Errors stop ``runserver`` / ``migrate``; warnings are printed. Every id is documented in
docs/configuration.md:

* ``django_broadcasting.E001`` a ``BROADCASTING`` key or ``BROADCAST_*`` variable is unknown or invalid.
* ``django_broadcasting.E002`` ``DEFAULT_DRIVER`` names no configured driver, or its BACKEND cannot be imported.
* ``django_broadcasting.E003`` the websocket driver is in use but ``CHANNEL_LAYERS`` has no layer for it.
* ``django_broadcasting.W001`` the in-memory channel layer is used with ``DEBUG = False``.
* ``django_broadcasting.W002`` no ``JWT_SECRET`` (nor ``JWT_PUBLIC_KEY``) with ``DEBUG = False``: tokens are
  signed with ``SECRET_KEY``.
* ``django_broadcasting.W003`` the redis driver is in use without an explicit Redis address, or with a bad URL.
* ``django_broadcasting.W004`` ``CORS_ALLOWED_ORIGINS`` is empty with ``DEBUG = False``.

No check opens a network connection: they only read configuration.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import DEFAULT_DRIVERS, broadcasting_settings

_IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _driver_backend(alias: str) -> str | None:
    config = broadcasting_settings.DRIVERS.get(alias)
    return config.get("BACKEND") if config else None


def _uses_backend(default_backend_alias: str) -> bool:
    """Return True if the default driver is the built-in ``default_backend_alias`` backend."""
    configured = _driver_backend(broadcasting_settings.default_driver_alias())
    if configured is None:
        return False
    try:  # older dotted paths (drivers.redis.RedisDriver) name the same class
        return import_string(configured) is import_string(DEFAULT_DRIVERS[default_backend_alias]["BACKEND"])
    except ImportError:
        return False


def _layer_alias() -> str:
    options: dict[str, Any] = (
        broadcasting_settings.DRIVERS.get(broadcasting_settings.default_driver_alias(), {}).get("OPTIONS", {})
        or {}
    )
    return options.get("layer") or options.get("LAYER") or "default"


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate ``BROADCASTING`` and the environment fall-backs, then look for risky setups."""
    try:
        broadcasting_settings.validate()
    except ImproperlyConfigured as exc:
        # Every other check reads settings: with a bad one they would only repeat this error.
        return [
            Error(
                str(exc),
                hint="See docs/configuration.md for every key and its type.",
                id="django_broadcasting.E001",
            )
        ]

    messages: list[CheckMessage] = []
    messages += _check_default_driver()
    messages += _check_channel_layer()
    messages += _check_jwt_secret()
    messages += _check_redis()
    messages += _check_cors()
    return messages


def _check_default_driver() -> list[CheckMessage]:
    alias = broadcasting_settings.default_driver_alias()
    backend = _driver_backend(alias)
    if backend is None:
        known = ", ".join(sorted(broadcasting_settings.DRIVERS))
        return [
            Error(
                f"DEFAULT_DRIVER {alias!r} is not a configured driver (configured: {known}).",
                hint="Set BROADCASTING['DEFAULT_DRIVER'] or BROADCAST_DRIVER to one of them, "
                "or add it to BROADCASTING['DRIVERS'].",
                id="django_broadcasting.E002",
            )
        ]
    try:
        import_string(backend)
    except ImportError as exc:
        return [
            Error(
                f"The BACKEND of driver {alias!r} cannot be imported ({backend}): {exc}",
                id="django_broadcasting.E002",
            )
        ]
    return []


def _check_channel_layer() -> list[CheckMessage]:
    if not _uses_backend("websocket"):
        return []
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    alias = _layer_alias()
    layer = layers.get(alias)
    if not layer or not layer.get("BACKEND"):
        return [
            Error(
                f"The websocket driver needs the channel layer {alias!r}, but CHANNEL_LAYERS has none.",
                hint="Add CHANNEL_LAYERS = {'default': {'BACKEND': "
                "'channels.layers.InMemoryChannelLayer'}} (one process) or channels_redis.",
                id="django_broadcasting.E003",
            )
        ]
    if layer["BACKEND"] == _IN_MEMORY_LAYER and not settings.DEBUG:
        return [
            Warning(
                "The in-memory channel layer is used with DEBUG = False.",
                hint="It only reaches sockets in the same process: use channels_redis (or the redis "
                "driver) when you run more than one server process.",
                id="django_broadcasting.W001",
            )
        ]
    return []


def _check_jwt_secret() -> list[CheckMessage]:
    # Signing with SECRET_KEY is fine while developing; the warning is for deployments.
    if settings.DEBUG or broadcasting_settings.JWT_SECRET or broadcasting_settings.JWT_PUBLIC_KEY:
        return []
    return [
        Warning(
            "No JWT_SECRET is set: WebSocket tokens are signed with SECRET_KEY.",
            hint="Set BROADCASTING['JWT_SECRET'] or the JWT_SECRET environment variable so tokens "
            "survive a SECRET_KEY rotation and can be shared with other services.",
            id="django_broadcasting.W002",
        )
    ]


def _check_redis() -> list[CheckMessage]:
    if not (_uses_backend("redis") or broadcasting_settings.REDIS_ENABLED):
        return []
    url = broadcasting_settings.REDIS_URL
    if url:
        if not url.startswith(_REDIS_SCHEMES):
            return [
                Warning(
                    f"REDIS_URL {url!r} is not a redis://, rediss:// or unix:// URL.",
                    id="django_broadcasting.W003",
                )
            ]
        return []
    user = getattr(settings, "BROADCASTING", None) or {}
    explicit = "REDIS_HOST" in user or "BROADCAST_REDIS_HOST" in os.environ
    if not explicit and not settings.DEBUG:
        return [
            Warning(
                "The redis driver is in use but no Redis address is configured; it falls back to "
                f"{broadcasting_settings.REDIS_HOST}:{broadcasting_settings.REDIS_PORT}.",
                hint="Set REDIS_URL (BROADCAST_REDIS_URL) or REDIS_HOST/REDIS_PORT "
                "(BROADCAST_REDIS_HOST/BROADCAST_REDIS_PORT).",
                id="django_broadcasting.W003",
            )
        ]
    return []


def _check_cors() -> list[CheckMessage]:
    if settings.DEBUG or broadcasting_settings.CORS_ALLOWED_ORIGINS:
        return []
    return [
        Warning(
            "CORS_ALLOWED_ORIGINS is empty with DEBUG = False: browser origins are only checked "
            "against ALLOWED_HOSTS.",
            hint="List the origins whose pages may open WebSocket connections, e.g. "
            "CORS_ALLOWED_ORIGINS=https://example.com (comma-separated in the environment).",
            id="django_broadcasting.W004",
        )
    ]
