"""The signed HTTP trigger: how a process without the server's memory publishes to it.

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

from .. import receipts
from ..conf import broadcasting_settings
from ..discovery import resolve_target
from ..exceptions import TransportError
from ..messages import Message
from .client import request_json

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
    """Return the trigger endpoint of the server this process publishes to (see ``discovery``)."""
    return resolve_target().url


def encode_body(messages: Sequence[Message]) -> bytes:
    """Serialise messages for the trigger (the payloads are already JSON, never re-encoded)."""
    return json.dumps({"messages": [m.to_transport() for m in messages]}, separators=(",", ":")).encode()


def _post(url: str | None, body: bytes, timeout: float) -> dict[str, Any]:
    target = resolve_target(url)
    # The expectation headers make a server of another project refuse before it delivers.
    headers = {"Content-Type": "application/json", **sign(body), **target.headers()}
    try:
        answer = request_json(
            target.url,
            what="the broadcast server",
            timeout=timeout,
            data=body,
            headers=headers,
            method="POST",
        )
    except TransportError as exc:
        raise target.failed(exc) from None
    receipts.note(target.accepted(answer))
    return answer


async def apost(messages: Sequence[Message], url: str | None = None) -> dict[str, Any]:
    """Send ``messages`` to the server's trigger endpoint; raise ``TransportError`` on failure.

    Success means this project's server accepted them (it answers who it is; see ``discovery``).
    """
    body = encode_body(messages)
    return await sync_to_async(_post, thread_sensitive=False)(
        url, body, broadcasting_settings.TRIGGER_TIMEOUT
    )
