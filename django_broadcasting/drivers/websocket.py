"""Older import path of the ``websocket`` driver: ``django_broadcasting.backends.local.LocalBackend``."""

from __future__ import annotations

from ..backends.local import LocalBackend, WebSocketDriver

__all__ = ["LocalBackend", "WebSocketDriver"]
