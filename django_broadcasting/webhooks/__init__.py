"""Webhooks in Pusher's format, and the same channel lifecycle as Django signals.

A server process POSTs ``{"time_ms": ..., "events": [...]}`` to ``PUSHER_WEBHOOK_URL``, signed
with ``X-Pusher-Key`` / ``X-Pusher-Signature`` (hex HMAC-SHA256 of the raw body with the app
secret), so Pusher SDKs' ``validate_webhook`` and Laravel's handlers accept it unchanged. Events:
``channel_occupied``, ``channel_vacated``, ``member_added``, ``member_removed``, ``client_event``
and ``cache_miss`` (``payloads.py`` has their fields), filtered by ``PUSHER_WEBHOOK_EVENTS``.

- ``config.py``: ``webhook_targets()``, the one reader of the webhook settings;
- ``payloads.py``: the events and the request body;
- ``sender.py``: batching, retries with backoff, the bounded queue;
- ``occupancy.py``: occupied/vacated from the backend's cluster-wide occupancy store;
- ``lifecycle.py``: the server process's hub of all this (``Lifecycle``).

Code that runs in the server process reports a cache miss with ``acache_miss(channel)`` (or
the fire-and-forget ``cache_miss(channel)``). See docs/webhooks.md.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .config import WEBHOOK_EVENTS, WebhookTarget, sign_body, webhook_targets

__all__ = [
    "WEBHOOK_EVENTS",
    "WebhookTarget",
    "acache_miss",
    "cache_miss",
    "sign_body",
    "webhook_stats",
    "webhook_targets",
]


async def acache_miss(channel: str) -> None:
    """Report that a subscriber of cache channel ``channel`` (canonical name) found nothing kept.

    Sends the ``cache_miss`` webhook (queued; never waits for the receiver) and the
    ``cache_miss`` signal. Call it on the server's event loop, from the node the subscriber is
    on; outside a started server it does nothing.
    """
    from .lifecycle import current

    lifecycle = current()
    if lifecycle is not None:
        await lifecycle.emit_channel("cache_miss", channel)


def cache_miss(channel: str) -> None:
    """``acache_miss`` without waiting: schedule it on the running loop (the server's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # not in the server's loop: there is no subscriber here to have missed anything
    from .lifecycle import current

    lifecycle = current()
    if lifecycle is not None:
        lifecycle._background(acache_miss(channel))


def webhook_stats() -> dict[str, Any] | None:
    """This process's webhook figures (queued, sent, dropped, failed requests...), or None."""
    from .lifecycle import current

    lifecycle = current()
    return lifecycle.state() if lifecycle is not None else None
