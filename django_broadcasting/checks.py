"""System checks (``manage.py check``) for risky or broken broadcasting setups.

Errors stop ``runserver`` / ``migrate``; warnings are printed. Every id is documented in
docs/configuration.md:

* ``django_broadcasting.E001`` a ``BROADCASTING`` key or ``BROADCAST_*`` variable is unknown or invalid
  (``PUSHER_APPS`` included: a missing or duplicate field of an app).
* ``django_broadcasting.E002`` ``DEFAULT_DRIVER`` names no configured driver, or its BACKEND cannot be imported.
* ``django_broadcasting.E003`` the websocket driver is in use but ``CHANNEL_LAYERS`` has no layer for it.
* ``django_broadcasting.W001`` the in-memory channel layer is used with ``DEBUG = False``.
* ``django_broadcasting.W002`` no ``JWT_SECRET`` (nor ``JWT_PUBLIC_KEY``) with ``DEBUG = False``: tokens are
  signed with ``SECRET_KEY``.
* ``django_broadcasting.W003`` the redis driver is in use without an explicit Redis address, or with a bad URL.
* ``django_broadcasting.E004`` only one of ``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER`` is set.
* ``django_broadcasting.E005`` ``PUSHER_ENCRYPTION_MASTER_KEY_BASE64`` is set but PyNaCl is not installed.
* ``django_broadcasting.W009`` ``PUSHER_APPS`` is set next to ``PUSHER_APP_ID`` / ``_KEY`` / ``_SECRET``, which it replaces.
* ``django_broadcasting.W004`` ``CORS_ALLOWED_ORIGINS`` is empty with ``DEBUG = False`` (with
  ``--deploy``: also when ``ALLOWED_HOSTS`` holds ``"*"`` or ``SECRET_KEY`` is a development key).

Deployment checks (``manage.py check --deploy`` only, so the demo's ``runserver`` stays quiet):

* ``django_broadcasting.W005`` tokens or Pusher signatures are keyed with an insecure ``SECRET_KEY``.
* ``django_broadcasting.W006`` the WebSocket Origin check accepts every origin.
* ``django_broadcasting.W007`` ``/metrics`` has no ``METRICS_TOKEN`` and the server binds a public address.
* ``django_broadcasting.W008`` Pusher credentials are shared with another program (or webhooks are
  sent, which their receiver verifies) but
  ``PUSHER_APP_SECRET`` is unset (the secret is derived from ``SECRET_KEY``).

No check opens a network connection: they only read configuration.
"""

from __future__ import annotations

import ipaddress
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
        from .pusher_apps import get_apps

        get_apps()  # PUSHER_APPS: each app's fields, duplicate ids and keys
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
    messages += _check_sentinel()
    messages += _check_cors()
    messages += _check_pusher_apps()
    messages += _check_encryption()
    return messages


def _check_pusher_apps() -> list[CheckMessage]:
    if broadcasting_settings.PUSHER_APPS is None:
        return []
    ignored = [
        name for name in ("PUSHER_APP_ID", "PUSHER_APP_KEY", "PUSHER_APP_SECRET") if _explicit(name, name)
    ]
    if not ignored:
        return []
    return [
        Warning(
            f"PUSHER_APPS is set, so {', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} not used: the apps "
            "are the ones PUSHER_APPS lists, and its first app (or the one marked 'default') is the default app.",
            hint='List that app in PUSHER_APPS (with "default": true) and remove the PUSHER_APP_* settings.',
            id="django_broadcasting.W009",
        )
    ]


def _check_encryption() -> list[CheckMessage]:
    if not broadcasting_settings.PUSHER_ENCRYPTION_MASTER_KEY_BASE64:
        return []
    try:
        import nacl.secret  # noqa: F401
    except ImportError:
        return [
            Error(
                "PUSHER_ENCRYPTION_MASTER_KEY_BASE64 is set but PyNaCl, which encrypted channels need, "
                "is not installed.",
                hint="pip install 'django-broadcasting[encryption]'",
                id="django_broadcasting.E005",
            )
        ]
    return []


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
    if broadcasting_settings.REDIS_CLUSTER_NODES:  # Redis Cluster: the seed nodes are the address
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
    if broadcasting_settings.REDIS_SENTINELS:
        return []  # the sentinels name the primary (a half Sentinel set-up is E004)
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


def _check_sentinel() -> list[CheckMessage]:
    sentinels = bool(broadcasting_settings.REDIS_SENTINELS)
    master = bool(broadcasting_settings.REDIS_SENTINEL_MASTER)
    if sentinels == master:
        return []
    given, missing = (
        ("REDIS_SENTINELS", "REDIS_SENTINEL_MASTER")
        if sentinels
        else ("REDIS_SENTINEL_MASTER", "REDIS_SENTINELS")
    )
    return [
        Error(
            f"{given} (BROADCAST_{given}) is set but {missing} (BROADCAST_{missing}) is not: "
            "Redis Sentinel needs both.",
            hint="REDIS_SENTINELS lists the sentinels as host:port; REDIS_SENTINEL_MASTER is the name "
            "they monitor (the `sentinel monitor <name> ...` line). Unset both for a standalone Redis.",
            id="django_broadcasting.E004",
        )
    ]


def _check_cors() -> list[CheckMessage]:
    if settings.DEBUG or broadcasting_settings.CORS_ALLOWED_ORIGINS:
        return []
    return [_w004()]


def _w004() -> Warning:
    hosts = getattr(settings, "ALLOWED_HOSTS", None) or []
    if "*" in hosts:
        problem = "ALLOWED_HOSTS has '*', so every browser origin is accepted"
    elif settings.DEBUG:
        problem = "SECRET_KEY is a development key, so these look like development settings on a server"
    else:
        problem = "DEBUG is False and browser origins are only checked against ALLOWED_HOSTS"
    return Warning(
        f"CORS_ALLOWED_ORIGINS is empty: {problem}.",
        hint="List the origins whose pages may open WebSocket connections, e.g. "
        "CORS_ALLOWED_ORIGINS=https://example.com (comma-separated in the environment).",
        id="django_broadcasting.W004",
    )


# -- deployment ------------------------------------------------------------------------------------
# Django's own rule for a SECRET_KEY fit for production (django/core/checks/security/base.py).
_INSECURE_KEY_PREFIX = "django-insecure-"
_MIN_KEY_LENGTH = 50
_MIN_KEY_CHARS = 5


def insecure_secret_key() -> bool:
    """Return True when ``SECRET_KEY`` is a development key: Django's ``django-insecure-`` prefix,
    or too short or too uniform to keep secret (Django's own ``security.W009`` rule)."""
    key = str(getattr(settings, "SECRET_KEY", "") or "")
    return (
        key.startswith(_INSECURE_KEY_PREFIX) or len(key) < _MIN_KEY_LENGTH or len(set(key)) < _MIN_KEY_CHARS
    )


def origin_check_open() -> bool:
    """Return True when any web page may open a socket: ``"*"`` in ``CORS_ALLOWED_ORIGINS``, or an
    empty list and ``"*"`` in ``ALLOWED_HOSTS`` (the list the Origin check falls back to)."""
    allowed = broadcasting_settings.CORS_ALLOWED_ORIGINS
    if "*" in allowed:
        return True
    return not allowed and "*" in (getattr(settings, "ALLOWED_HOSTS", None) or [])


def _public_bind(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in ("", "localhost") or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name other than localhost: reachable from elsewhere


def _explicit(key: str, env: str) -> bool:
    """Return True when ``key`` is set in ``BROADCASTING`` or its environment variable is set."""
    user = getattr(settings, "BROADCASTING", None) or {}
    return key in user or bool(os.environ.get(env, "").strip())


@register(Tags.security, deploy=True)
def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Flag setups that are fine for the demo and unsafe on a public site (``check --deploy``)."""
    try:
        broadcasting_settings.validate()
    except ImproperlyConfigured:
        return []  # check_settings reports it as E001
    messages: list[CheckMessage] = []
    messages += _check_insecure_keys()
    messages += _check_origin_deploy()
    messages += _check_metrics_bind()
    messages += _check_pusher_secret()
    return messages


def _check_insecure_keys() -> list[CheckMessage]:
    if not insecure_secret_key():
        return []
    derived = []
    hmac_allowed = any(alg.upper().startswith("HS") for alg in broadcasting_settings.JWT_ALGORITHMS)
    if not broadcasting_settings.JWT_SECRET and hmac_allowed:
        derived.append("WebSocket tokens (JWT_SECRET is unset)")
    if not broadcasting_settings.PUSHER_APP_SECRET and broadcasting_settings.PUSHER_APPS is None:
        derived.append("Pusher channel signatures (PUSHER_APP_SECRET is unset)")
    if not derived:
        return []
    return [
        Warning(
            f"{' and '.join(derived)} are keyed with SECRET_KEY, which is a development key "
            "(django-insecure-, or short): anyone who has read it can forge them, roles included.",
            hint="Set a long random SECRET_KEY (DJANGO_SECRET_KEY in the example project), and JWT_SECRET "
            "and PUSHER_APP_SECRET of their own.",
            id="django_broadcasting.W005",
        )
    ]


def _check_origin_deploy() -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if origin_check_open():
        messages.append(
            Warning(
                "The WebSocket Origin check accepts every origin (CORS_ALLOWED_ORIGINS has '*', or is "
                "empty while ALLOWED_HOSTS has '*'): any web page can open a socket with its visitors' "
                "session cookies and join their private channels.",
                hint="List your sites in CORS_ALLOWED_ORIGINS, e.g. CORS_ALLOWED_ORIGINS=https://example.com.",
                id="django_broadcasting.W006",
            )
        )
    # W004 without --deploy covers DEBUG = False; a deployed DEBUG = True set-up shows itself by
    # ALLOWED_HOSTS = ['*'] or a development SECRET_KEY.
    wildcard_hosts = "*" in (getattr(settings, "ALLOWED_HOSTS", None) or [])
    if (
        settings.DEBUG
        and not broadcasting_settings.CORS_ALLOWED_ORIGINS
        and (wildcard_hosts or insecure_secret_key())
    ):
        messages.append(_w004())
    return messages


def _check_metrics_bind() -> list[CheckMessage]:
    host = broadcasting_settings.WEBSOCKET_HOST or "127.0.0.1"
    if broadcasting_settings.METRICS_TOKEN or not _public_bind(host):
        return []
    return [
        Warning(
            f"GET /metrics has no METRICS_TOKEN and the server binds {host!r}, a public address: "
            "anyone can read connection, channel and error counts.",
            hint="Set METRICS_TOKEN (BROADCAST_METRICS_TOKEN) and scrape with "
            "'Authorization: Bearer <token>', or keep /metrics behind the proxy.",
            id="django_broadcasting.W007",
        )
    ]


def _check_pusher_secret() -> list[CheckMessage]:
    if broadcasting_settings.PUSHER_APP_SECRET or broadcasting_settings.PUSHER_APPS is not None:
        return []  # every app of PUSHER_APPS has a secret of its own
    shared = [
        name
        for key, env, name in (
            ("PUSHER_APP_KEY", "PUSHER_APP_KEY", "PUSHER_APP_KEY"),
            ("PUSHER_APP_ID", "PUSHER_APP_ID", "PUSHER_APP_ID"),
            ("PUSHER_HOST", "PUSHER_HOST", "PUSHER_HOST"),
            ("PUSHER_WEBHOOK_URL", "PUSHER_WEBHOOK_URL", "PUSHER_WEBHOOK_URL"),  # the receiver verifies
        )
        if _explicit(key, env)
    ]
    if not shared:
        return []
    return [
        Warning(
            f"{', '.join(shared)} is set, so another program (a Pusher SDK, Laravel) signs requests for "
            "this app, but PUSHER_APP_SECRET is unset: the secret is derived from SECRET_KEY, which that "
            "program cannot share without leaking SECRET_KEY, and which changes when it rotates.",
            hint="Set PUSHER_APP_SECRET to a long random value in both programs.",
            id="django_broadcasting.W008",
        )
    ]
