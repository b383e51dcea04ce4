"""Compatibility path: the Pusher WebSocket route is ``server/protocols/pusher/routing.py``."""

from __future__ import annotations

from .pusher.routing import pusher_urlpatterns

__all__ = ["pusher_urlpatterns"]
