"""Pusher Channels protocol 7 frames: the encoder the hub uses for Pusher clients, and parsing.

Every frame is ``{"event", "channel"?, "data"}``. Event payloads are *double-encoded*: ``data``
is a JSON string holding the JSON payload (pusher-js parses it a second time), except for
``pusher:error``, whose ``data`` is an object, as Pusher sends it.

Channel names: the hub knows one canonical name per channel (``user.5``, ``presence.chat.1``);
Pusher clients see the name they subscribe with (``private-user.5``, ``presence-chat.1``), see
``client_name``. Presence events of the hub (``member_added`` / ``member_removed`` with
``{"id", "info"}``) become ``pusher_internal:member_added`` ``{"user_id", "user_info"}`` and
``pusher_internal:member_removed`` ``{"user_id"}``; client events carry ``user_id`` on
presence channels.
"""

from __future__ import annotations

import json
from typing import Any

from ....authorization import PRESENCE_NAMESPACE, pusher_client_name
from ....messages import APP_NAMESPACE, JSONTooDeep, Message, app_local_name, parse_json

# pusher:error codes (https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol).
# 4000-4099: do not reconnect unchanged; 4100-4199: reconnect with backoff; 4200-4299: reconnect now.
PUSHER_4001_APP_NOT_FOUND = 4001
PUSHER_4004_OVER_QUOTA = 4004
PUSHER_4007_UNSUPPORTED_PROTOCOL = 4007
PUSHER_4009_UNAUTHORIZED = 4009
PUSHER_4100_OVER_CAPACITY = 4100
PUSHER_4200_RECONNECT = 4200
PUSHER_4201_PONG_TIMEOUT = 4201
PUSHER_4301_RATE_LIMITED = 4301

ERROR_MESSAGES: dict[int, str] = {
    PUSHER_4001_APP_NOT_FOUND: "Application does not exist.",
    PUSHER_4004_OVER_QUOTA: "Application is over connection quota.",
    PUSHER_4007_UNSUPPORTED_PROTOCOL: "Unsupported protocol version.",
    PUSHER_4009_UNAUTHORIZED: "Connection is unauthorized.",
    PUSHER_4100_OVER_CAPACITY: "Over capacity.",
    PUSHER_4200_RECONNECT: "Server is restarting or dropped the connection; please reconnect.",
    PUSHER_4201_PONG_TIMEOUT: "Pong reply not received.",
    PUSHER_4301_RATE_LIMITED: "Client event rejected due to rate limit.",
}

SUPPORTED_PROTOCOLS = frozenset({5, 6, 7})
SERVER_TO_USER_PREFIX = "#server-to-user-"

MEMBER_ADDED = "member_added"
MEMBER_REMOVED = "member_removed"


class PusherFrameError(Exception):
    """A client frame the server cannot act on; answered with ``pusher:error`` (code null)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        self.message = message
        self.code = code
        super().__init__(message)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def event_frame(event: str, data: Any = None, channel: str | None = None) -> str:
    """Encode a server frame with ``data`` double-encoded (a JSON string of the payload)."""
    body: dict[str, Any] = {"event": event}
    if channel is not None:
        body["channel"] = channel
    body["data"] = _dumps({} if data is None else data)
    return _dumps(body)


def error_frame(code: int | None, message: str | None = None) -> str:
    """Encode ``pusher:error`` (``data`` is an object; ``code`` may be null for non-fatal errors)."""
    text = message or (ERROR_MESSAGES.get(code, "Error.") if code is not None else "Error.")
    return _dumps({"event": "pusher:error", "data": {"code": code, "message": text}})


def subscription_error_frame(channel: str, status: int, message: str) -> str:
    """Encode ``pusher:subscription_error`` for one channel (Echo's ``.error()`` callback gets ``data``)."""
    return _dumps(
        {
            "event": "pusher:subscription_error",
            "channel": channel,
            "data": _dumps({"type": "AuthError", "error": message, "status": status}),
        }
    )


#: The name a Pusher client uses for a canonical channel name.
client_name = pusher_client_name


def parse(text: str | None, max_size: int) -> tuple[str, Any, str | None]:
    """Decode a client frame into ``(event, data, channel)``; raise ``PusherFrameError``."""
    if text is None:
        raise PusherFrameError("Binary frames are not supported; send JSON text.")
    if len(text) > max_size:
        raise PusherFrameError(f"Message is larger than {max_size} bytes.")
    try:
        body = parse_json(text)
    except JSONTooDeep as exc:
        raise PusherFrameError(str(exc)) from None
    except ValueError:
        raise PusherFrameError("Malformed JSON.") from None
    if not isinstance(body, dict):
        raise PusherFrameError("A message must be a JSON object.")
    event = body.get("event")
    if not isinstance(event, str) or not event:
        raise PusherFrameError("Field 'event' is required.")
    data = body.get("data")
    if isinstance(data, str) and not event.startswith("client-"):
        # Some clients double-encode what they send as well; accept both forms.
        try:
            data = parse_json(data)
        except JSONTooDeep as exc:
            raise PusherFrameError(str(exc)) from None
        except ValueError:
            pass
    channel = body.get("channel")
    if channel is not None and not isinstance(channel, str):
        raise PusherFrameError("Field 'channel' must be a string.")
    return event, data, channel


class PusherProtocol:
    """Encoder the hub uses for Pusher subscribers (hashable, one shared instance)."""

    name = "pusher"

    @staticmethod
    def encode(message: Message) -> str:
        name = message.channel
        if name.startswith(APP_NAMESPACE):  # another app's channel: its clients know it unprefixed
            name = name.partition(":")[2]
        channel = client_name(name)
        event = message.event
        data_json = message.data_json
        if name.startswith(PRESENCE_NAMESPACE) and event in (MEMBER_ADDED, MEMBER_REMOVED):
            member = message.data if isinstance(message.data, dict) else {}
            if event == MEMBER_ADDED:
                event = "pusher_internal:member_added"
                data_json = _dumps({"user_id": member.get("id"), "user_info": member.get("info", {})})
            else:
                event = "pusher_internal:member_removed"
                data_json = _dumps({"user_id": member.get("id")})
        user_part = f',"user_id":{_dumps(message.user_id)}' if message.user_id is not None else ""
        return (
            f'{{"event":{_dumps(event)},"channel":{_dumps(channel)},"data":{_dumps(data_json)}{user_part}}}'
        )

    @staticmethod
    def token_expired(conn: Any) -> None:
        # The hub closes the socket next (4011); the Pusher connection announces it as 4009.
        return None

    @staticmethod
    def cache_miss(channel: str) -> str:
        """``{"event": "pusher:cache_miss", "channel": ...}``: a cache channel with nothing cached."""
        return _dumps({"event": "pusher:cache_miss", "channel": client_name(app_local_name(channel))})

    @staticmethod
    def recovered(channel: str, count: int, last_id: str | None) -> None:
        """Pusher protocol 7 has no recovery frames: nothing is sent."""
        return None

    @staticmethod
    def recovery_failed(channel: str, reason: str, since: Any, current_id: str | None) -> None:
        return None


PUSHER = PusherProtocol()
