"""Settings for django-broadcasting, read lazily from ``settings.BROADCASTING``.

Each key has a default, an optional environment variable (the ``BROADCAST_*``,
``JWT_SECRET``, ``CORS_ALLOWED_ORIGINS`` and Laravel's ``PUSHER_APP_*``) used when
``settings.BROADCASTING`` leaves the key out, and a parser that validates the value.
An unknown key or a bad value raises ``ImproperlyConfigured`` naming the key.

Nothing is read at import time: ``broadcasting_settings.KEY`` resolves on first access
and the cache is dropped on ``setting_changed`` (so ``override_settings`` works) and by
``reload_broadcasting_settings()``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .exceptions import BroadcastingImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("expected a boolean (true/false)")


def _int(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError("expected an integer") from None
        if isinstance(value, float) and number != value:
            raise ValueError("expected an integer")
        if minimum is not None and number < minimum:
            raise ValueError(f"must be >= {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be <= {maximum}")
        return number

    return parse


def _float(minimum: float = 0.0) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("expected a number") from None
        if number < minimum:
            raise ValueError(f"must be >= {minimum}")
        return number

    return parse


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _optional_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return _str(value)


def _str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("expected a list of strings (or a comma-separated string)")


def _host_port(item: Any) -> tuple[str, int]:
    if isinstance(item, (list, tuple)) and len(item) == 2:
        host, port = item
    elif isinstance(item, str):
        host, sep, port = item.strip().rpartition(":")
        if not sep:
            raise ValueError(f"{item!r} is not host:port")
        host = host.removeprefix("[").removesuffix("]")  # [::1]:26379
    else:
        raise ValueError(f"{item!r} is not host:port")
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise ValueError(f"{item!r} has no host")
    try:
        number = int(port)
    except (TypeError, ValueError):
        raise ValueError(f"{item!r} has no port number") from None
    if not 1 <= number <= 65535:
        raise ValueError(f"{item!r}: the port must be 1-65535")
    return host, number


def _host_port_list(value: Any) -> tuple[tuple[str, int], ...]:
    """``"h1:26379,h2:26379"`` or a list of ``"host:port"`` strings or ``(host, port)`` pairs."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        raise ValueError("expected a list of host:port (or a comma-separated string)")
    return tuple(_host_port(item) for item in value)


def _mapping(value: Any) -> dict:
    if not isinstance(value, Mapping):
        raise ValueError("expected a dict")
    return dict(value)


def _callable(value: Any) -> Callable[..., Any]:
    """Accept a callable or a dotted path to one (imported when the setting is first read)."""
    if isinstance(value, str):
        from django.utils.module_loading import import_string

        try:
            value = import_string(value)
        except ImportError as exc:
            raise ValueError(f"cannot import {value!r}: {exc}") from None
    if not callable(value):
        raise ValueError("expected a callable or a dotted path to one")
    return value


#: The webhook events of Pusher's format this server sends (``PUSHER_WEBHOOK_EVENTS`` picks among them).
WEBHOOK_EVENTS: tuple[str, ...] = (
    "channel_occupied",
    "channel_vacated",
    "member_added",
    "member_removed",
    "client_event",
    "cache_miss",
)


def _webhook_urls(value: Any) -> tuple[str, ...]:
    """One URL (the environment variable, or a string in settings) or a list of them (settings)."""
    from urllib.parse import urlsplit

    if value is None or value == "":
        return ()
    urls = (value.strip(),) if isinstance(value, str) else value
    if not isinstance(urls, (list, tuple)) or not all(isinstance(u, str) for u in urls):
        raise ValueError("expected a URL or a list of URLs")
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return tuple(urls)


def _webhook_events(value: Any) -> frozenset[str]:
    """A comma list (environment) or a list (settings) of webhook event names; empty means all."""
    if value is None or value == "":
        return frozenset(WEBHOOK_EVENTS)
    names = _str_list(value)
    unknown = sorted(set(names) - set(WEBHOOK_EVENTS))
    if unknown:
        raise ValueError(
            f"unknown webhook event(s) {', '.join(unknown)}; choose from {', '.join(WEBHOOK_EVENTS)}"
        )
    return frozenset(names)


def _master_key_base64(value: Any) -> str | None:
    """A base64 string that decodes to exactly 32 bytes (the end-to-end encryption master key)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("expected a base64 string")
    import base64
    import binascii

    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64; generate a key with `openssl rand -base64 32`") from None
    if len(key) != 32:
        raise ValueError(
            f"must decode to exactly 32 bytes, not {len(key)}; generate a key with `openssl rand -base64 32`"
        )
    return value.strip()


def _drivers(value: Any) -> dict[str, dict]:
    drivers = _mapping(value)
    for alias, config in drivers.items():
        if not isinstance(config, Mapping) or not isinstance(config.get("BACKEND"), str):
            raise ValueError(f"driver {alias!r} needs a dict with a 'BACKEND' dotted path")
    return drivers


@dataclass(frozen=True)
class Option:
    """One setting: its default, environment fall-back and parser."""

    default: Any
    parse: Callable[[Any], Any]
    env: str | None = None
    #: A secret: its value is never repeated in an error message.
    secret: bool = False


DEFAULT_DRIVERS: dict[str, dict[str, Any]] = {
    "websocket": {"BACKEND": "django_broadcasting.backends.local.LocalBackend"},
    "redis": {"BACKEND": "django_broadcasting.backends.redis.RedisBackend"},
    "log": {"BACKEND": "django_broadcasting.drivers.log.LogDriver"},
    "null": {"BACKEND": "django_broadcasting.drivers.null.NullDriver"},
    "memory": {"BACKEND": "django_broadcasting.drivers.memory.MemoryDriver"},
    "pusher": {"BACKEND": "django_broadcasting.drivers.pusher.PusherDriver"},
}

OPTIONS: dict[str, Option] = {
    # Drivers
    "DEFAULT_DRIVER": Option("websocket", _str, "BROADCAST_DRIVER"),
    "DRIVERS": Option({}, _drivers),  # merged over DEFAULT_DRIVERS
    # Server (the websocket settings)
    "WEBSOCKET_ENABLED": Option(True, _bool, "BROADCAST_WEBSOCKET_ENABLED"),
    "WEBSOCKET_HOST": Option("127.0.0.1", _str, "BROADCAST_WEBSOCKET_HOST"),
    "WEBSOCKET_PORT": Option(8080, _int(1, 65535), "BROADCAST_WEBSOCKET_PORT"),
    # Redis (the redis settings; REDIS_URL wins when set)
    "REDIS_ENABLED": Option(False, _bool, "BROADCAST_REDIS_ENABLED"),
    "REDIS_HOST": Option("localhost", _str, "BROADCAST_REDIS_HOST"),
    "REDIS_PORT": Option(6379, _int(1, 65535), "BROADCAST_REDIS_PORT"),
    "REDIS_PASSWORD": Option(None, _optional_str, "BROADCAST_REDIS_PASSWORD"),
    "REDIS_DATABASE": Option(0, _int(0, 10_000), "BROADCAST_REDIS_DATABASE"),
    "REDIS_URL": Option(None, _optional_str, "BROADCAST_REDIS_URL"),
    "REDIS_SOCKET_TIMEOUT": Option(10.0, _float(0.1), "BROADCAST_REDIS_SOCKET_TIMEOUT"),
    "REDIS_MAX_CONNECTIONS": Option(200, _int(1), "BROADCAST_REDIS_MAX_CONNECTIONS"),
    # Redis Sentinel (backends/redis/sentinel.py): both set, or neither
    "REDIS_SENTINELS": Option((), _host_port_list, "BROADCAST_REDIS_SENTINELS"),
    "REDIS_SENTINEL_MASTER": Option(None, _optional_str, "BROADCAST_REDIS_SENTINEL_MASTER"),
    # Redis Cluster (backends/redis/cluster.py): seed nodes; when set, the redis backend runs on the cluster
    "REDIS_CLUSTER_NODES": Option((), _host_port_list, "BROADCAST_REDIS_CLUSTER_NODES"),
    "CHANNELS_PREFIX": Option("", _str, "BROADCAST_CHANNELS_PREFIX"),
    # Authentication
    "JWT_SECRET": Option(None, _optional_str, "JWT_SECRET"),
    "JWT_PUBLIC_KEY": Option(None, _optional_str, "JWT_PUBLIC_KEY"),
    "JWT_PRIVATE_KEY": Option(None, _optional_str, "JWT_PRIVATE_KEY"),
    "JWT_ALGORITHMS": Option(("HS256",), _str_list, "JWT_ALGORITHMS"),
    "JWT_AUDIENCE": Option("websocket", _str),
    "JWT_LEEWAY": Option(0, _int(0, 3600)),
    "JWT_TTL": Option(3600, _int(1)),
    "CORS_ALLOWED_ORIGINS": Option((), _str_list, "CORS_ALLOWED_ORIGINS"),
    "REQUIRE_ORIGIN": Option(False, _bool, "BROADCAST_REQUIRE_ORIGIN"),
    "SESSION_AUTH": Option(True, _bool),
    # Channels
    "STRICT_CHANNELS": Option(False, _bool, "BROADCAST_STRICT_CHANNELS"),
    "BUILTIN_CHANNELS": Option(True, _bool),  # the built-in rules (general, user.{id}, ...)
    "TEAM_ACCESS": Option("django_broadcasting.broadcast_channels.default_team_access", _callable),
    "ORG_ACCESS": Option("django_broadcasting.broadcast_channels.default_org_access", _callable),
    "AUTODISCOVER": Option(True, _bool),
    "MAX_CHANNEL_NAME_LENGTH": Option(164, _int(1, 1024)),
    "MAX_PAYLOAD_SIZE": Option(65536, _int(64)),
    # Connection limits and liveness
    "MAX_CONNECTIONS": Option(0, _int(0), "BROADCAST_MAX_CONNECTIONS"),  # 0 = unlimited
    "MAX_CONNECTIONS_PER_ADDRESS": Option(256, _int(0), "BROADCAST_MAX_CONNECTIONS_PER_ADDRESS"),
    "TRUSTED_PROXIES": Option((), _str_list, "BROADCAST_TRUSTED_PROXIES"),
    "MAX_CHANNELS": Option(100_000, _int(0), "BROADCAST_MAX_CHANNELS"),  # per process
    "MAX_PRESENCE_INFO_SIZE": Option(1024, _int(0), "BROADCAST_MAX_PRESENCE_INFO_SIZE"),
    "MAX_SUBSCRIPTIONS": Option(100, _int(1), "BROADCAST_MAX_SUBSCRIPTIONS"),
    "MAX_FRAME_SIZE": Option(16384, _int(64), "BROADCAST_MAX_FRAME_SIZE"),
    "CLIENT_RATE_LIMIT": Option(
        50, _int(0), "BROADCAST_CLIENT_RATE_LIMIT"
    ),  # client frames per second; 0 = off
    "OUTGOING_BUFFER": Option(
        1000, _int(1), "BROADCAST_OUTGOING_BUFFER"
    ),  # frames queued per connection before it is dropped
    # Fan-out writes pre-framed bytes straight to the socket on uvicorn/daphne (server/connection.py)
    "DIRECT_WRITES": Option(True, _bool, "BROADCAST_DIRECT_WRITES"),
    "PING_INTERVAL": Option(25.0, _float(0), "BROADCAST_PING_INTERVAL"),  # server pings; 0 = off
    "ACTIVITY_TIMEOUT": Option(
        120.0, _float(0), "BROADCAST_ACTIVITY_TIMEOUT"
    ),  # close when silent this long; 0 = off
    "COMPRESSION": Option(False, _bool, "BROADCAST_COMPRESSION"),
    # Presence and history
    "PRESENCE_TTL": Option(30.0, _float(1), "BROADCAST_PRESENCE_TTL"),
    "HISTORY_ENABLED": Option(True, _bool, "BROADCAST_HISTORY_ENABLED"),
    "HISTORY_SIZE": Option(100, _int(0), "BROADCAST_HISTORY_SIZE"),
    "HISTORY_TTL": Option(300.0, _float(0), "BROADCAST_HISTORY_TTL"),  # 0 = no expiry
    # In-memory history budgets (0 = no limit) and whether client events (whispers) are kept.
    "HISTORY_CHANNEL_MAX_BYTES": Option(1_048_576, _int(0), "BROADCAST_HISTORY_CHANNEL_MAX_BYTES"),
    "HISTORY_MAX_BYTES": Option(33_554_432, _int(0), "BROADCAST_HISTORY_MAX_BYTES"),
    "HISTORY_CLIENT_EVENTS": Option(False, _bool, "BROADCAST_HISTORY_CLIENT_EVENTS"),
    # Cache channels (cache-*): seconds the last event of a channel is kept (Pusher keeps it 30 minutes)
    "CACHE_CHANNEL_TTL": Option(1800.0, _float(1), "BROADCAST_CACHE_CHANNEL_TTL"),
    # Bytes of cached payloads one server process keeps in memory (0 = no limit but the TTL)
    "CACHE_CHANNEL_MAX_BYTES": Option(33_554_432, _int(0), "BROADCAST_CACHE_CHANNEL_MAX_BYTES"),
    "STATS_INTERVAL": Option(5.0, _float(0.1), "BROADCAST_STATS_INTERVAL"),  # node reports to Redis
    # Publishing from other processes (signed HTTP trigger)
    "TRIGGER_URL": Option(None, _optional_str, "BROADCAST_TRIGGER_URL"),
    "TRIGGER_SECRET": Option(None, _optional_str, "BROADCAST_TRIGGER_SECRET"),
    "TRIGGER_MAX_AGE": Option(300, _int(1)),
    "TRIGGER_MAX_BODY": Option(1_048_576, _int(1024)),
    "TRIGGER_TIMEOUT": Option(5.0, _float(0.1)),
    # What identifies this project to its server (default: the project directory's real path)
    "PROJECT": Option(None, _optional_str, "BROADCAST_PROJECT"),
    # Browser client ({% broadcasting_client %} and the token refresh endpoint)
    "CLIENT_URL": Option(None, _optional_str, "BROADCAST_CLIENT_URL"),  # None: ws(s)://<request host>/ws
    "CLIENT_TOKEN_TTL": Option(
        300, _int(1), "BROADCAST_CLIENT_TOKEN_TTL"
    ),  # seconds; the client refreshes it
    # Operations
    "STATS_TOKEN": Option(None, _optional_str, "BROADCAST_STATS_TOKEN"),
    "METRICS_TOKEN": Option(None, _optional_str, "BROADCAST_METRICS_TOKEN"),
    "NODE_ID": Option(None, _optional_str, "BROADCAST_NODE_ID"),
    # Pusher protocol
    "PUSHER_APP_ID": Option("1", _str, "PUSHER_APP_ID"),  # digits: Pusher SDKs insist on them
    "PUSHER_APP_KEY": Option("app-key", _str, "PUSHER_APP_KEY"),
    "PUSHER_APP_SECRET": Option(None, _optional_str, "PUSHER_APP_SECRET"),
    "PUSHER_HOST": Option(None, _optional_str, "PUSHER_HOST"),
    "PUSHER_PORT": Option(None, lambda v: None if v in (None, "") else _int(1, 65535)(v), "PUSHER_PORT"),
    "PUSHER_SCHEME": Option("http", _str, "PUSHER_SCHEME"),
    # End-to-end encrypted channels (private-encrypted-*): base64 of 32 random bytes; None = refused
    "PUSHER_ENCRYPTION_MASTER_KEY_BASE64": Option(
        None, _master_key_base64, "PUSHER_ENCRYPTION_MASTER_KEY_BASE64", secret=True
    ),
    "PUSHER_CLIENT_EVENT_RATE_LIMIT": Option(
        10, _int(0), "PUSHER_CLIENT_EVENT_RATE_LIMIT"
    ),  # per socket per second
    "PUSHER_MAX_CONNECTIONS": Option(
        0, _int(0), "PUSHER_MAX_CONNECTIONS"
    ),  # the app's quota (4004); 0 = none
    # Webhooks in Pusher's format (django_broadcasting.webhooks, docs/webhooks.md)
    "PUSHER_WEBHOOK_URL": Option((), _webhook_urls, "PUSHER_WEBHOOK_URL"),  # one URL; a list in settings
    "PUSHER_WEBHOOK_EVENTS": Option("", _webhook_events, "PUSHER_WEBHOOK_EVENTS"),  # default: all
    "WEBHOOK_TIMEOUT": Option(5.0, _float(0.1), "BROADCAST_WEBHOOK_TIMEOUT"),  # seconds per request
    "WEBHOOK_BATCH_SIZE": Option(50, _int(1, 1000), "BROADCAST_WEBHOOK_BATCH_SIZE"),  # events per request
    "WEBHOOK_BATCH_DELAY": Option(0.25, _float(0), "BROADCAST_WEBHOOK_BATCH_DELAY"),  # gathering window
    "WEBHOOK_QUEUE_SIZE": Option(10_000, _int(1), "BROADCAST_WEBHOOK_QUEUE_SIZE"),  # per URL; oldest dropped
    "WEBHOOK_RETRY_FOR": Option(300.0, _float(0), "BROADCAST_WEBHOOK_RETRY_FOR"),  # then a batch is dropped
    # Several apps: a list of dicts (JSON in the environment), validated by pusher_apps.load_apps
    # (its messages name the app and the field, and never echo a secret).
    "PUSHER_APPS": Option(None, lambda value: value, "PUSHER_APPS"),
}


class BroadcastingSettings:
    """Attribute access to the resolved ``BROADCASTING`` settings, cached until reset."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}
        self._checked = False

    def _user_settings(self) -> dict[str, Any]:
        user = getattr(settings, "BROADCASTING", None) or {}
        if not isinstance(user, Mapping):
            raise BroadcastingImproperlyConfigured("settings.BROADCASTING must be a dict.")
        if not self._checked:
            unknown = sorted(set(user) - set(OPTIONS))
            if unknown:
                raise BroadcastingImproperlyConfigured(
                    f"Unknown BROADCASTING setting(s): {', '.join(unknown)}."
                )
            self._checked = True
        return user

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._cache[name]
        except KeyError:
            pass
        option = OPTIONS.get(name)
        if option is None:
            raise AttributeError(f"Unknown BROADCASTING setting: {name!r}")
        user = self._user_settings()
        if name in user:
            raw, source = user[name], f"BROADCASTING['{name}']"
        elif option.env and option.env in os.environ:
            raw, source = os.environ[option.env], f"environment variable {option.env}"
        else:
            raw, source = option.default, None
        if source is None:
            value = option.parse(raw) if raw is not None else None
        else:
            try:
                value = option.parse(raw)
            except ValueError as exc:
                shown = "" if option.secret else f" (got {raw!r})"
                raise BroadcastingImproperlyConfigured(f"{source}: {exc}{shown}.") from None
        if name == "DRIVERS":
            value = {**DEFAULT_DRIVERS, **value}
        self._cache[name] = value
        # Later reads find the value as a plain attribute and never reach __getattr__ again
        # (settings are read on every request of the HTTP ingress); reload() removes it.
        self.__dict__[name] = value
        return value

    def is_explicit(self, name: str) -> bool:
        """True when ``name`` is set in ``settings.BROADCASTING`` or by its environment variable."""
        option = OPTIONS[name]
        return name in self._user_settings() or bool(option.env and option.env in os.environ)

    def default_driver_alias(self) -> str:
        """Return the alias every publisher and server uses by default: the one place it is decided.

        ``DEFAULT_DRIVER`` (``BROADCAST_DRIVER``), except that ``BROADCAST_REDIS_ENABLED=true``
        next to the default ``websocket`` driver means "scale out through Redis": the ``redis``
        backend, which carries the hubs' traffic over Redis pub/sub, takes its place.
        """
        try:
            return self._cache["<default_driver_alias>"]
        except KeyError:
            pass
        alias = self.DEFAULT_DRIVER
        if alias == "websocket" and self.REDIS_ENABLED:
            alias = "redis"
        self._cache["<default_driver_alias>"] = alias
        return alias

    def validate(self) -> None:
        """Resolve every setting now, raising on the first bad one (used by system checks)."""
        for name in OPTIONS:
            getattr(self, name)

    def reload(self) -> None:
        """Forget every cached value; the next access reads settings and the environment again."""
        for name in self._cache:
            self.__dict__.pop(name, None)
        self._cache.clear()
        self._checked = False


broadcasting_settings = BroadcastingSettings()

_reset_hooks: list[Callable[[], None]] = []


def on_reload(func: Callable[[], None]) -> Callable[[], None]:
    """Register ``func`` to run whenever the settings are reloaded (module caches use it)."""
    _reset_hooks.append(func)
    return func


def reload_broadcasting_settings() -> None:
    """Drop the cached settings and every cache registered with ``on_reload``."""
    broadcasting_settings.reload()
    for hook in list(_reset_hooks):
        hook()


@receiver(setting_changed)
def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"BROADCASTING", "SECRET_KEY", "CHANNEL_LAYERS", "ALLOWED_HOSTS", "DEBUG"}:
        reload_broadcasting_settings()
