"""The Pusher apps this server serves: one by default, several with ``BROADCASTING["PUSHER_APPS"]``.

Without ``PUSHER_APPS`` there is one app, made of the single-app settings (``PUSHER_APP_ID``,
``PUSHER_APP_KEY``, ``PUSHER_APP_SECRET``, ``PUSHER_MAX_CONNECTIONS``,
``PUSHER_CLIENT_EVENT_RATE_LIMIT``, the webhook and encryption settings). With it, the apps are
exactly the ones listed (like Reverb's ``apps`` and soketi's app manager)::

    BROADCASTING = {"PUSHER_APPS": [
        {"id": "1001", "key": "shop-key", "secret": "...", "allowed_origins": ["https://shop.example"]},
        {"id": "1002", "key": "chat-key", "secret": "...", "max_connections": 500,
         "webhook_urls": ["https://chat.example/pusher/webhooks"], "webhook_events": ["channel_occupied"],
         "encryption_master_key_base64": "..."},
    ]}

(or the same list as JSON in the ``PUSHER_APPS`` environment variable). The **default app** is the
one marked ``"default": true``, else the first. It keeps plain channel names, so native ``/ws``
clients, Django publishers (``broadcast()``, events) and its Pusher clients share channels as with a
single app. Every other app's channels live under an internal prefix in the hub, in Redis pub/sub,
presence and history (``#app-<id>:<channel>``, see ``PusherApp.hub_name``): a channel ``orders``
of app 1002 is not the ``orders`` of app 1001. Client-supplied names can never start with that
prefix (``canonical_name`` refuses them), so one app cannot reach another's channels.

Everything here is read lazily and rebuilt when settings change. Configuration mistakes raise
``ImproperlyConfigured`` naming the app (its position and id) and the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from .conf import OPTIONS, broadcasting_settings, on_reload
from .core.ids import app_position
from .exceptions import BroadcastingImproperlyConfigured
from .messages import APP_NAMESPACE
from .pusher_app_fields import (
    ID_RULE,
    KEY_RULE,
    WEBHOOK_EVENTS,
    count,
    events,
    fail,
    flag,
    master_key,
    strings,
    text,
    urls,
)

__all__ = [
    "APP_NAMESPACE",
    "WEBHOOK_EVENTS",
    "AppRegistry",
    "PusherApp",
    "app_by_id",
    "app_by_key",
    "app_channel",
    "app_for_socket_id",
    "default_app",
    "get_apps",
    "split_channel",
    "unscoped",
]

#: At most this many apps: socket ids carry the app's position in two digits.
MAX_APPS = 100

_FIELDS = frozenset(
    {
        "id",
        "key",
        "secret",
        "name",
        "default",
        "allowed_origins",
        "max_connections",
        "client_event_rate_limit",
        "enable_client_messages",
        "webhook_urls",
        "webhook_events",
        "encryption_master_key_base64",
    }
)
# Reverb's spellings (``app_id``, ``capacity``: null is no limit) and one webhook URL.
_ALIASES = {"app_id": "id", "capacity": "max_connections", "webhook_url": "webhook_urls"}


@dataclass(frozen=True)
class PusherApp:
    """One app: credentials, limits, webhooks and encryption key.

    ``allowed_origins`` None means the project's origin policy (``CORS_ALLOWED_ORIGINS``);
    ``webhook_events`` None means every event; ``encryption_master_key`` is 32 bytes or None.
    ``namespace`` is ``""`` for the default app and ``"#app-<id>:"`` for the others.
    """

    id: str
    key: str
    secret: str
    name: str = ""
    default: bool = True
    index: int = 0
    namespace: str = ""
    allowed_origins: tuple[str, ...] | None = None
    max_connections: int = 0
    client_event_rate_limit: int = 10
    enable_client_messages: bool = True
    webhook_urls: tuple[str, ...] = ()
    webhook_events: frozenset[str] | None = None
    encryption_master_key: bytes | None = field(default=None, repr=False)

    def hub_name(self, channel: str) -> str:
        """Return the hub (and Redis) name of this app's ``channel`` (a canonical name)."""
        return self.namespace + channel if self.namespace else channel

    def owns(self, hub_name: str) -> bool:
        """Whether ``hub_name`` is a channel of this app."""
        if self.namespace:
            return hub_name.startswith(self.namespace)
        return not hub_name.startswith(APP_NAMESPACE)

    def wants_webhook(self, event: str) -> bool:
        """Whether this app's webhooks include ``event``."""
        return bool(self.webhook_urls) and (self.webhook_events is None or event in self.webhook_events)


class AppRegistry:
    """The configured apps, looked up by key, by id and by position."""

    def __init__(self, apps: list[PusherApp]) -> None:
        self.apps = tuple(apps)
        self.default = next(app for app in apps if app.default)
        self.by_key = {app.key: app for app in apps}
        self.by_id = {app.id: app for app in apps}
        self.several = len(apps) > 1

    def __iter__(self) -> Any:
        return iter(self.apps)

    def __len__(self) -> int:
        return len(self.apps)


# -- reading the settings ---------------------------------------------------------------------------
def _optional_setting(name: str, default: Any = None) -> Any:
    """A setting that a feature may add to the option table; ``default`` while it has not."""
    return getattr(broadcasting_settings, name) if name in OPTIONS else default


def derived_secret() -> str:
    """The secret used when ``PUSHER_APP_SECRET`` is unset: derived from ``SECRET_KEY``."""
    return hashlib.sha256(b"django-broadcasting.pusher:" + settings.SECRET_KEY.encode()).hexdigest()


def _single_app() -> PusherApp:
    # The option table has already validated (and parsed) the webhook settings.
    webhook_urls = _optional_setting("PUSHER_WEBHOOK_URL") or ()
    webhook_events = _optional_setting("PUSHER_WEBHOOK_EVENTS")
    key = _optional_setting("PUSHER_ENCRYPTION_MASTER_KEY_BASE64")
    where = "the default app (PUSHER_APP_* settings)"
    return PusherApp(
        id=str(broadcasting_settings.PUSHER_APP_ID),
        key=broadcasting_settings.PUSHER_APP_KEY,
        secret=broadcasting_settings.PUSHER_APP_SECRET or derived_secret(),
        max_connections=broadcasting_settings.PUSHER_MAX_CONNECTIONS,
        client_event_rate_limit=broadcasting_settings.PUSHER_CLIENT_EVENT_RATE_LIMIT,
        webhook_urls=tuple(webhook_urls),
        webhook_events=frozenset(webhook_events) if webhook_events else None,
        encryption_master_key=master_key(key, where, "PUSHER_ENCRYPTION_MASTER_KEY_BASE64") if key else None,
    )


def _entries(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            # The value holds secrets: say where the JSON breaks, never echo it.
            raise BroadcastingImproperlyConfigured(
                f"PUSHER_APPS is not valid JSON ({exc.msg} at position {exc.pos})."
            ) from None
    if not isinstance(raw, (list, tuple)) or not raw:
        raise BroadcastingImproperlyConfigured("PUSHER_APPS must be a non-empty list of apps (dicts).")
    if len(raw) > MAX_APPS:
        raise BroadcastingImproperlyConfigured(
            f"PUSHER_APPS lists {len(raw)} apps; at most {MAX_APPS} are supported."
        )
    return list(raw)


def _listed_app(index: int, entry: Any) -> PusherApp:
    where = f"PUSHER_APPS[{index}]"
    if not isinstance(entry, Mapping):
        raise fail(where, "each app must be a dict with at least 'id', 'key' and 'secret'.")
    entry = {_ALIASES.get(k, k): v for k, v in entry.items()}
    if "id" in entry and isinstance(entry["id"], (str, int)):
        where = f"PUSHER_APPS[{index}] (app id {str(entry['id'])[:64]!r})"
    unknown = sorted(str(k) for k in set(entry) - _FIELDS)
    if unknown:
        raise fail(where, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}.")
    for required in ("id", "key", "secret"):
        if entry.get(required) in (None, ""):
            raise fail(where, f"'{required}' is required.")
    get = entry.get
    return PusherApp(
        id=text(entry["id"], where, "id", ID_RULE),
        key=text(entry["key"], where, "key", KEY_RULE),
        secret=text(entry["secret"], where, "secret"),
        name=text(get("name"), where, "name") if get("name") is not None else "",
        default=flag(get("default", False), where, "default"),
        index=index,
        allowed_origins=strings(get("allowed_origins"), where, "allowed_origins")
        if get("allowed_origins") is not None
        else None,
        max_connections=count(
            get("max_connections", broadcasting_settings.PUSHER_MAX_CONNECTIONS) or 0,
            where,
            "max_connections",
        ),
        client_event_rate_limit=count(
            get("client_event_rate_limit", broadcasting_settings.PUSHER_CLIENT_EVENT_RATE_LIMIT),
            where,
            "client_event_rate_limit",
        ),
        enable_client_messages=flag(get("enable_client_messages", True), where, "enable_client_messages"),
        webhook_urls=urls(get("webhook_urls"), where, "webhook_urls") if get("webhook_urls") else (),
        webhook_events=events(get("webhook_events"), where, "webhook_events")
        if get("webhook_events")
        else None,
        encryption_master_key=master_key(
            get("encryption_master_key_base64"), where, "encryption_master_key_base64"
        )
        if get("encryption_master_key_base64")
        else None,
    )


def load_apps(raw: Any) -> AppRegistry:
    """Validate a ``PUSHER_APPS`` value (a list of dicts, or its JSON) and return the registry."""
    apps = [_listed_app(i, entry) for i, entry in enumerate(_entries(raw))]
    seen_ids: dict[str, int] = {}
    seen_keys: dict[str, int] = {}
    for app in apps:
        if app.id in seen_ids:
            raise BroadcastingImproperlyConfigured(
                f"PUSHER_APPS[{app.index}] (app id {app.id!r}): duplicate 'id', already used by PUSHER_APPS[{seen_ids[app.id]}]."
            )
        if app.key in seen_keys:
            raise BroadcastingImproperlyConfigured(
                f"PUSHER_APPS[{app.index}] (app id {app.id!r}): duplicate 'key', already used by "
                f"PUSHER_APPS[{seen_keys[app.key]}] (app id {apps[seen_keys[app.key]].id!r})."
            )
        seen_ids[app.id], seen_keys[app.key] = app.index, app.index
    marked = [app for app in apps if app.default]
    if len(marked) > 1:
        raise BroadcastingImproperlyConfigured(
            f"PUSHER_APPS: {len(marked)} apps are marked 'default' ({', '.join(repr(a.id) for a in marked)}); mark one."
        )
    default = marked[0] if marked else apps[0]
    out = []
    for app in apps:
        is_default = app is default
        out.append(
            PusherApp(
                **{
                    **app.__dict__,
                    "default": is_default,
                    "namespace": "" if is_default else f"{APP_NAMESPACE}{app.id}:",
                }
            )
        )
    return AppRegistry(out)


_registry: AppRegistry | None = None


def get_apps() -> AppRegistry:
    """Return the configured apps (built on first use, again after a settings change)."""
    global _registry
    registry = _registry
    if registry is None:
        raw = broadcasting_settings.PUSHER_APPS
        registry = _registry = load_apps(raw) if raw is not None else AppRegistry([_single_app()])
    return registry


@on_reload
def _forget_apps() -> None:
    global _registry
    _registry = None


def default_app() -> PusherApp:
    """Return the default app (plain channel names; native clients and Django publishers use it)."""
    return get_apps().default


def app_by_key(key: str) -> PusherApp | None:
    """Return the app whose key is ``key`` (``/app/{key}``), or None."""
    return get_apps().by_key.get(key)


def app_by_id(app_id: str) -> PusherApp | None:
    """Return the app whose id is ``app_id`` (``/apps/{id}/...``), or None."""
    return get_apps().by_id.get(app_id)


def app_for_socket_id(socket_id: str) -> PusherApp | None:
    """Return the app a socket id was given out for, when several apps are configured.

    With several apps, the part before the dot ends with the app's position in two digits
    (``Hub.new_socket_id``). None when one app is configured or the id names no app.
    """
    apps = get_apps()
    if not apps.several:
        return None
    position = app_position(socket_id)
    if position is None:
        return None
    return apps.apps[position] if position < len(apps.apps) else None


def split_channel(hub_name: str) -> tuple[PusherApp, str]:
    """Return the app a hub channel name belongs to and the channel's name within that app."""
    if hub_name.startswith(APP_NAMESPACE):
        app_id, sep, name = hub_name[len(APP_NAMESPACE) :].partition(":")
        app = app_by_id(app_id)
        if sep and app is not None:
            return app, name
    return default_app(), hub_name


def unscoped(hub_name: str) -> str:
    """Return the name clients of the channel's app know it by (the hub name without the app prefix)."""
    if hub_name.startswith(APP_NAMESPACE):
        return hub_name.partition(":")[2] or hub_name
    return hub_name


def app_channel(app_id: str, channel: str) -> str:
    """Return the name to publish to for ``channel`` of app ``app_id``, from Django code::

        broadcast_to_channel(app_channel("1002", "orders"), "OrderShipped", {...})

    ``ImproperlyConfigured`` for an unknown app id.
    """
    app = app_by_id(str(app_id))
    if app is None:
        raise BroadcastingImproperlyConfigured(
            f"No Pusher app with id {str(app_id)[:64]!r} (see PUSHER_APPS)."
        )
    from .authorization import canonical_name

    return app.hub_name(canonical_name(channel))
