"""The JSON protocol, spoken on ``/ws`` and ``/ws/{channel}``.

Server to client, every frame is ``{"channel", "event", "data", "timestamp"}`` (plus ``id``
where history is kept). Connection-level frames (``connected``, ``pong``, errors not tied
to a channel) carry ``"channel": null``. Client to server: ``{"action": ..., "channel"?,
"event"?, "data"?}``. The full reference is docs/protocol.md.
"""

from __future__ import annotations

import json
from typing import Any

from ....core import codes
from ....messages import JSONTooDeep, native_frame, parse_json, utc_now_iso


class ProtocolError(Exception):
    """A client frame the server cannot act on; becomes an error frame with ``code``."""

    def __init__(self, code: int, message: str | None = None, channel: str | None = None) -> None:
        self.code = code
        self.message = message or codes.ERROR_MESSAGES.get(code, "Error.")
        self.channel = channel
        super().__init__(self.message)


def frame(event: str, data: Any = None, channel: str | None = None, **extra: Any) -> str:
    """Encode one server frame."""
    body = {
        "channel": channel,
        "event": event,
        "data": {} if data is None else data,
        "timestamp": utc_now_iso(),
    }
    body.update(extra)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)


def error_frame(code: int, message: str | None = None, channel: str | None = None) -> str:
    """Encode an error frame with a stable numeric ``code``."""
    return frame(
        "error", {"code": code, "message": message or codes.ERROR_MESSAGES.get(code, "Error.")}, channel
    )


def parse(text: str | None, max_size: int) -> dict[str, Any]:
    """Decode a client frame into a dict with an ``action``, or raise ``ProtocolError``."""
    if text is None:
        raise ProtocolError(codes.ERR_4000_BAD_REQUEST, "Binary frames are not supported; send JSON text.")
    if len(text) > max_size:
        raise ProtocolError(codes.ERR_4009_MESSAGE_TOO_BIG, f"Frame is larger than {max_size} bytes.")
    try:
        body = parse_json(text)
    except JSONTooDeep as exc:
        raise ProtocolError(codes.ERR_4000_BAD_REQUEST, str(exc)) from None
    except ValueError:
        raise ProtocolError(codes.ERR_4000_BAD_REQUEST, "Malformed JSON.") from None
    if not isinstance(body, dict):
        raise ProtocolError(codes.ERR_4000_BAD_REQUEST)
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise ProtocolError(codes.ERR_4002_MISSING_FIELD, "Field 'action' is required.")
    return body


def require_str(body: dict[str, Any], field: str) -> str:
    """Return a non-empty string field of a client frame, or raise ``ProtocolError``."""
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise ProtocolError(
            codes.ERR_4002_MISSING_FIELD,
            f"Field {field!r} is required.",
            body.get("channel") if isinstance(body.get("channel"), str) else None,
        )
    return value


class NativeProtocol:
    """Encoder used by the hub for native subscribers (hashable, one shared instance)."""

    name = "native"

    #: ``Message.native_frame`` without the property's extra call (once per broadcast).
    encode = staticmethod(native_frame)

    @staticmethod
    def token_expired(conn: Any) -> None:
        conn.push(error_frame(codes.ERR_4011_TOKEN_EXPIRED))

    @staticmethod
    def cache_miss(channel: str) -> str:
        """A cache channel with no cached event: ``{"channel", "event": "cache_miss", "data": {}}``."""
        return frame("cache_miss", {}, channel)

    @staticmethod
    def recovered(channel: str, count: int, last_id: str | None) -> str:
        """The end of a replay: ``{"event": "recovered", "data": {"channel", "count", "last_id"}}``."""
        return frame("recovered", {"channel": channel, "count": count, "last_id": last_id}, channel)

    @staticmethod
    def recovery_failed(channel: str, reason: str, since: Any, current_id: str | None) -> str:
        """Missed messages are gone: ``recovery_failed`` with code 4290 (never a silent gap)."""
        return frame(
            "recovery_failed",
            {
                "code": codes.ERR_4290_RECOVERY_FAILED,
                "message": f"Missed messages could not be recovered: {reason}.",
                "last_id": since if isinstance(since, str) else None,
                "current_id": current_id,
            },
            channel,
        )


NATIVE = NativeProtocol()
