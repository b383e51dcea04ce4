"""The one exception hierarchy of django-broadcasting.

Configuration problems subclass Django's ``ImproperlyConfigured`` so they surface the
way every other Django misconfiguration does. Runtime problems subclass
``BroadcastError`` and carry a stable ``code`` (the same numbers the WebSocket protocol
puts in its error frames, see ``django_broadcasting.core.codes``).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class BroadcastingImproperlyConfigured(ImproperlyConfigured):
    """A ``BROADCASTING`` setting or environment variable is missing or wrong."""


class InvalidDriver(BroadcastingImproperlyConfigured):
    """A driver alias is unknown, or its ``BACKEND`` cannot be imported."""


class BroadcastError(Exception):
    """Base class of every runtime error raised while broadcasting."""

    default_code: int = 4000
    default_detail: str = "Broadcast error."

    def __init__(self, detail: str | None = None, *, code: int | None = None) -> None:
        self.detail = detail if detail is not None else self.default_detail
        self.code = code if code is not None else self.default_code
        super().__init__(self.detail)


class InvalidMessage(BroadcastError, ValueError):
    """The event name or payload cannot be broadcast (e.g. data that is not JSON)."""

    default_code = 4002
    default_detail = "Invalid message."


class InvalidChannelName(InvalidMessage):
    """A channel name is empty, too long, or contains characters that are not allowed."""

    default_code = 4003
    default_detail = "Invalid channel name."


class ChannelForbidden(BroadcastError, PermissionError):
    """The identity may not subscribe to the channel (default-deny for private channels)."""

    default_code = 4030
    default_detail = "Not authorized for this channel."


class AuthenticationFailed(BroadcastError):
    """A token is missing, malformed, expired or signed with the wrong key."""

    default_code = 4010
    default_detail = "Authentication failed."


class TokenExpired(AuthenticationFailed):
    """The token was valid once but has expired; the client should refresh it."""

    default_code = 4011
    default_detail = "Token expired."


class TransportError(BroadcastError, ConnectionError):
    """The transport (channel layer, Redis, HTTP trigger) could not be reached in time."""

    default_code = 4500
    default_detail = "Broadcast transport unavailable."


class OverCapacity(BroadcastError):
    """A configured limit of this server is reached (channels per process, presence info size...)."""

    default_code = 4100
