"""Where webhooks go and how they are signed: the one place the webhook settings are read.

``webhook_targets()`` turns ``PUSHER_WEBHOOK_URL`` / ``PUSHER_WEBHOOK_EVENTS`` and the Pusher
app's key and secret into ``WebhookTarget`` values. Everything else (the senders, the server's
lifecycle) asks this function, so per-app webhooks only change what it returns for an app key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from ..conf import WEBHOOK_EVENTS

__all__ = ["WEBHOOK_EVENTS", "WebhookTarget", "sign_body", "webhook_targets"]


@dataclass(frozen=True)
class WebhookTarget:
    """One receiver: its URL, the events it gets, and the app credentials that sign for it."""

    url: str
    events: frozenset[str]
    key: str
    secret: str
    app_id: str = ""  # the Pusher app whose channels' events this receiver gets

    def wants(self, name: str) -> bool:
        return name in self.events

    def sign(self, body: bytes) -> dict[str, str]:
        """The headers of one request: ``X-Pusher-Key`` and ``X-Pusher-Signature`` of ``body``."""
        return {"X-Pusher-Key": self.key, "X-Pusher-Signature": sign_body(body, self.secret)}


def sign_body(body: bytes, secret: str) -> str:
    """Return the hex HMAC-SHA256 of the raw ``body`` with ``secret`` (``X-Pusher-Signature``)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_targets(app_key: str | None = None) -> tuple[WebhookTarget, ...]:
    """Return the webhook receivers of every configured app (of the app with key ``app_key`` only).

    The single-app settings give the default app's: ``PUSHER_WEBHOOK_URL``, each URL getting the
    events of ``PUSHER_WEBHOOK_EVENTS`` (default: all of ``WEBHOOK_EVENTS``), signed with
    ``PUSHER_APP_KEY`` / ``PUSHER_APP_SECRET``. With ``PUSHER_APPS`` each app has its own
    ``webhook_urls``, ``webhook_events``, key and secret, and gets the events of its channels only.
    """
    from ..pusher_apps import get_apps

    targets: list[WebhookTarget] = []
    for app in get_apps():
        if app_key is not None and app.key != app_key:
            continue
        events = frozenset(WEBHOOK_EVENTS if app.webhook_events is None else app.webhook_events)
        targets.extend(WebhookTarget(url, events, app.key, app.secret, app.id) for url in app.webhook_urls)
    return tuple(targets)
