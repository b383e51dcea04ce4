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
from ...discovery import resolve_target
from ...exceptions import TransportError
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
    """Return the trigger endpoint of the server this process publishes to (see ``discovery``)."""
    return resolve_target().url


def encode_body(messages: Sequence[Message]) -> bytes:
    """Serialise messages for the trigger (the payloads are already JSON, never re-encoded)."""
    return json.dumps(
        {"messages": [{"origin": "trigger", **m.to_transport()} for m in messages]}, separators=(",", ":")
    ).encode()


def send(messages: Sequence[Message], url: str | None = None) -> tuple[dict[str, Any], str]:
    """Post ``messages`` to this project's server; return its answer and who accepted them.

    Success means this project's server accepted them: the request names the project it is
    meant for (a server of another project refuses it with 409 and delivers nothing) and the
    answer says which server took it (see ``discovery``). Raise a one-line ``TransportError``
    that says what to set when no such server accepts them.
    """
    target = resolve_target(url)
    body = encode_body(messages)
    headers = {"Content-Type": "application/json", **sign(body), **target.headers()}
    try:
        answer = request_json(
            target.url,
            what="the broadcast server",
            timeout=broadcasting_settings.TRIGGER_TIMEOUT,
            data=body,
            headers=headers,
            method="POST",
        )
    except TransportError as exc:
        raise target.failed(exc) from None
    return answer, target.accepted(answer)


def post(messages: Sequence[Message], url: str | None = None) -> dict[str, Any]:
    """Send ``messages`` to the server's trigger endpoint and return its answer (see ``send``).

    Sync on purpose: the request is blocking I/O either way, and sync publishers (commands,
    WSGI views, tasks) call it directly.
    """
    return send(messages, url)[0]


async def apost(messages: Sequence[Message], url: str | None = None) -> dict[str, Any]:
    """Async twin of ``post`` (the blocking request runs in a worker thread)."""
    return await sync_to_async(post, thread_sensitive=False)(messages, url)


async def asend(messages: Sequence[Message], url: str | None = None) -> tuple[dict[str, Any], str]:
    """Async twin of ``send``."""
    return await sync_to_async(send, thread_sensitive=False)(messages, url)
