"""The signed HTTP trigger, publisher side: how a process without the server's memory publishes to it.

A request is ``POST /api/broadcast/events`` with a JSON body and two headers::

    X-Broadcast-Timestamp: <unix seconds>
    X-Broadcast-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the trigger secret>

The secret is ``TRIGGER_SECRET`` (falls back to a key derived from ``SECRET_KEY``, so
processes of one project agree without extra configuration). Requests older than
``TRIGGER_MAX_AGE`` seconds are refused, which bounds replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from ...conf import broadcasting_settings
from ...discovery import discovered_server
from ...messages import Message
from ..webclient import request_json

TIMESTAMP_HEADER = "X-Broadcast-Timestamp"
SIGNATURE_HEADER = "X-Broadcast-Signature"


def trigger_secret() -> bytes:
    """Return the shared secret for signing trigger requests."""
    secret = broadcasting_settings.TRIGGER_SECRET
    if secret:
        return secret.encode()
    return hashlib.sha256(b"django-broadcasting.trigger:" + settings.SECRET_KEY.encode()).digest()


def sign(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Return the headers that sign ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(trigger_secret(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: f"sha256={digest}"}


def verify(body: bytes, timestamp: str | None, signature: str | None) -> str | None:
    """Return None when the signature is valid and fresh, else the reason it is not."""
    if not timestamp or not signature:
        return "missing signature"
    try:
        ts = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(time.time() - ts) > broadcasting_settings.TRIGGER_MAX_AGE:
        return "stale timestamp"
    expected = sign(body, ts)[SIGNATURE_HEADER]
    if not hmac.compare_digest(expected, signature):
        return "bad signature"
    return None


def trigger_url() -> str:
    """Return the trigger endpoint of the server this process publishes to."""
    if broadcasting_settings.TRIGGER_URL:
        return broadcasting_settings.TRIGGER_URL
    host, port = broadcasting_settings.WEBSOCKET_HOST, broadcasting_settings.WEBSOCKET_PORT
    if not (
        broadcasting_settings.is_explicit("WEBSOCKET_PORT")
        or broadcasting_settings.is_explicit("WEBSOCKET_HOST")
    ):
        found = discovered_server()  # the server of this project running on this machine, if any
        if found is not None:
            host, port = found
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{port}/api/broadcast/events"


def encode_body(messages: Sequence[Message]) -> bytes:
    """Serialise messages for the trigger (the payloads are already JSON, never re-encoded)."""
    return json.dumps(
        {"messages": [{"origin": "trigger", **m.to_transport()} for m in messages]}, separators=(",", ":")
    ).encode()


def _post(url: str, body: bytes, timeout: float) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **sign(body)}
    return request_json(
        url, what="the broadcast server", timeout=timeout, data=body, headers=headers, method="POST"
    )


def post(messages: Sequence[Message], url: str | None = None) -> dict[str, Any]:
    """Send ``messages`` to the server's trigger endpoint and return its answer.

    Raise ``TransportError`` when no server accepts them. Sync on purpose: the request is
    blocking I/O either way, and sync publishers (commands, WSGI views, tasks) call it directly.
    """
    return _post(url or trigger_url(), encode_body(messages), broadcasting_settings.TRIGGER_TIMEOUT)


async def apost(messages: Sequence[Message], url: str | None = None) -> dict[str, Any]:
    """Async twin of ``post`` (the blocking request runs in a worker thread)."""
    return await sync_to_async(post, thread_sensitive=False)(messages, url)
