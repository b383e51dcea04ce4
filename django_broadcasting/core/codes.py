"""Named WebSocket close codes and native-protocol error codes, in one place.

Error frames are ``{"event": "error", "data": {"code": <int>, "message": <str>}}``; the
codes are stable and documented in docs/protocol.md. Fatal errors close the socket with a
close code in 4000-4999 (or a standard 1xxx code where one fits).
"""

from __future__ import annotations

__all__ = [
    "WS_1000_NORMAL_CLOSURE",
    "WS_1001_GOING_AWAY",
    "WS_1008_POLICY_VIOLATION",
    "WS_1009_MESSAGE_TOO_BIG",
    "WS_1011_INTERNAL_ERROR",
    "WS_1012_SERVICE_RESTART",
    "WS_1013_TRY_AGAIN_LATER",
    "CLOSE_4001_UNAUTHORIZED",
    "CLOSE_4003_FORBIDDEN_CHANNEL",
    "CLOSE_4008_RATE_LIMITED",
    "CLOSE_4009_MESSAGE_TOO_BIG",
    "CLOSE_4011_TOKEN_EXPIRED",
    "CLOSE_4100_OVER_CAPACITY",
    "CLOSE_4200_RECONNECT",
    "CLOSE_4201_PONG_TIMEOUT",
    "ERR_4000_BAD_REQUEST",
    "ERR_4001_UNKNOWN_ACTION",
    "ERR_4002_MISSING_FIELD",
    "ERR_4003_INVALID_CHANNEL",
    "ERR_4004_NOT_SUBSCRIBED",
    "ERR_4005_INVALID_EVENT",
    "ERR_4009_MESSAGE_TOO_BIG",
    "ERR_4010_UNAUTHENTICATED",
    "ERR_4011_TOKEN_EXPIRED",
    "ERR_4029_TOO_MANY_SUBSCRIPTIONS",
    "ERR_4030_FORBIDDEN",
    "ERR_4031_WHISPER_NOT_ALLOWED",
    "ERR_4080_RATE_LIMITED",
    "ERR_4100_OVER_CAPACITY",
    "ERR_4290_RECOVERY_FAILED",
    "ERR_4500_INTERNAL",
    "ERROR_MESSAGES",
]


# Standard close codes (RFC 6455).
WS_1000_NORMAL_CLOSURE = 1000
WS_1001_GOING_AWAY = 1001
WS_1008_POLICY_VIOLATION = 1008
WS_1009_MESSAGE_TOO_BIG = 1009
WS_1011_INTERNAL_ERROR = 1011
WS_1012_SERVICE_RESTART = 1012
WS_1013_TRY_AGAIN_LATER = 1013

# Close codes of the native protocol. 40xx: do not reconnect without changing something;
# 42xx: reconnect (with backoff).
CLOSE_4001_UNAUTHORIZED = 4001
CLOSE_4003_FORBIDDEN_CHANNEL = 4003
CLOSE_4008_RATE_LIMITED = 4008
CLOSE_4009_MESSAGE_TOO_BIG = 4009
CLOSE_4011_TOKEN_EXPIRED = 4011
CLOSE_4100_OVER_CAPACITY = 4100
CLOSE_4200_RECONNECT = 4200  # e.g. the client could not keep up: reconnect and recover
CLOSE_4201_PONG_TIMEOUT = 4201  # no activity within ACTIVITY_TIMEOUT

# Error-frame codes of the native protocol (non-fatal unless noted).
ERR_4000_BAD_REQUEST = 4000  # malformed JSON or a frame that is not an object
ERR_4001_UNKNOWN_ACTION = 4001
ERR_4002_MISSING_FIELD = 4002
ERR_4003_INVALID_CHANNEL = 4003
ERR_4004_NOT_SUBSCRIBED = 4004
ERR_4005_INVALID_EVENT = 4005
ERR_4009_MESSAGE_TOO_BIG = 4009
ERR_4010_UNAUTHENTICATED = 4010
ERR_4011_TOKEN_EXPIRED = 4011
ERR_4029_TOO_MANY_SUBSCRIPTIONS = 4029
ERR_4030_FORBIDDEN = 4030
ERR_4031_WHISPER_NOT_ALLOWED = 4031
ERR_4080_RATE_LIMITED = 4080
ERR_4100_OVER_CAPACITY = 4100  # a server limit: channels per process, presence info size
ERR_4290_RECOVERY_FAILED = 4290
ERR_4500_INTERNAL = 4500

ERROR_MESSAGES: dict[int, str] = {
    ERR_4000_BAD_REQUEST: "Frame is not a JSON object.",
    ERR_4001_UNKNOWN_ACTION: "Unknown action.",
    ERR_4002_MISSING_FIELD: "A required field is missing.",
    ERR_4003_INVALID_CHANNEL: "Invalid channel name.",
    ERR_4004_NOT_SUBSCRIBED: "Not subscribed to this channel.",
    ERR_4005_INVALID_EVENT: "Invalid event name.",
    ERR_4009_MESSAGE_TOO_BIG: "Frame is larger than the server accepts.",
    ERR_4010_UNAUTHENTICATED: "Authentication required.",
    ERR_4011_TOKEN_EXPIRED: "Token expired.",
    ERR_4029_TOO_MANY_SUBSCRIPTIONS: "Too many subscriptions on this connection.",
    ERR_4030_FORBIDDEN: "Not authorized for this channel.",
    ERR_4031_WHISPER_NOT_ALLOWED: "Whispers are allowed on private and presence channels only.",
    ERR_4080_RATE_LIMITED: "Too many frames; slow down.",
    ERR_4100_OVER_CAPACITY: "Over capacity; try again later.",
    ERR_4290_RECOVERY_FAILED: "Missed messages could not be recovered.",
    ERR_4500_INTERNAL: "Internal server error.",
}
