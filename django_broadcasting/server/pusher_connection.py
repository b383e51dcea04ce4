"""Compatibility path: the Pusher connection is ``server/protocols/pusher/connection.py``."""

from __future__ import annotations

from .protocols.pusher.connection import (
    PING_FRAME,
    PusherConnection,
    announced_activity_timeout,
    ensure_keepalive,
    pusher_connections,
    terminate_user_connections,
)

__all__ = [
    "PING_FRAME",
    "PusherConnection",
    "announced_activity_timeout",
    "ensure_keepalive",
    "pusher_connections",
    "terminate_user_connections",
]
