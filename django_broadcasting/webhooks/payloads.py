"""Webhook events in Pusher's format, and the body of one request.

An event is a small dict with ``name`` first, as Pusher documents them::

    {"name": "channel_occupied", "channel": "presence-chat.1"}
    {"name": "channel_vacated", "channel": "presence-chat.1"}
    {"name": "member_added", "channel": "presence-chat.1", "user_id": "5"}
    {"name": "member_removed", "channel": "presence-chat.1", "user_id": "5"}
    {"name": "client_event", "channel": "private-orders.1", "event": "client-typing",
     "data": "{\\"typing\\":true}", "socket_id": "123.456", "user_id": "5"}   # user_id: presence only
    {"name": "cache_miss", "channel": "cache-prices"}

``channel`` is the name a Pusher client uses (``private-orders.1`` for the canonical
``orders.1``, ``presence-chat.1`` for ``presence.chat.1``). A request's body is
``{"time_ms": <ms since the epoch when it was sent>, "events": [...]}``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..authorization import pusher_client_name
from ..pusher_apps import unscoped

__all__ = ["channel_event", "client_event", "member_event", "body", "pusher_channel"]


def pusher_channel(canonical: str) -> str:
    """The channel's name as Pusher clients (and so webhook handlers) know it.

    A channel of an app other than the default one loses its hub prefix (``#app-<id>:``): each
    app's receivers get the names its own clients use.
    """
    return pusher_client_name(unscoped(canonical))


def channel_event(name: str, canonical: str) -> dict[str, Any]:
    """``channel_occupied``, ``channel_vacated`` or ``cache_miss`` for ``canonical``."""
    return {"name": name, "channel": pusher_channel(canonical)}


def member_event(name: str, canonical: str, user_id: str) -> dict[str, Any]:
    """``member_added`` or ``member_removed`` of ``user_id``."""
    return {"name": name, "channel": pusher_channel(canonical), "user_id": str(user_id)}


def client_event(
    canonical: str, event: str, data: Any, data_json: str, socket_id: str | None, user_id: str | None
) -> dict[str, Any]:
    """``client_event``: ``data`` is a string, the JSON the clients received (a string payload as it is)."""
    out: dict[str, Any] = {
        "name": "client_event",
        "channel": pusher_channel(canonical),
        "event": event,
        "data": data if isinstance(data, str) else data_json,
        "socket_id": socket_id,
    }
    if user_id is not None:
        out["user_id"] = str(user_id)
    return out


def body(events: list[dict[str, Any]], time_ms: int | None = None) -> bytes:
    """The raw body of one request (what ``X-Pusher-Signature`` signs)."""
    payload = {"time_ms": int(time.time() * 1000) if time_ms is None else time_ms, "events": events}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()
