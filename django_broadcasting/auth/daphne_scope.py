"""Daphne leaves ``scheme`` out of WebSocket scopes (django/daphne#538); the auth middleware needs it.

Even when daphne terminates TLS itself every socket looked like ``ws``, so the origin policy
compared ``https://`` pages with an ``http://`` origin. ``report_websocket_scheme`` sets ``"wss"``
when the connection's transport is TLS and ``"ws"`` otherwise, as daphne's HTTP scopes already
say ``https``/``http``. The auth middleware applies it when it is built in a process that has
imported daphne's server. (Was ``django_broadcasting.server.daphne_compat``, which re-exports it.)
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["report_websocket_scheme"]

_scheme_patched = False


def report_websocket_scheme() -> None:
    """Patch daphne's ``Server.create_application`` to put ``scheme`` in WebSocket scopes (idempotent).

    A no-op in a process that has not imported ``daphne.server`` (uvicorn, tests).
    """
    global _scheme_patched
    server_module = sys.modules.get("daphne.server")
    if _scheme_patched or server_module is None:
        return
    from twisted.internet.interfaces import ISSLTransport

    server_class = server_module.Server
    original = server_class.create_application

    def create_application(self: Any, protocol: Any, scope: dict[str, Any]) -> Any:
        if scope.get("type") == "websocket" and "scheme" not in scope:
            secure = ISSLTransport(getattr(protocol, "transport", None), None) is not None
            scope["scheme"] = "wss" if secure else "ws"
        return original(self, protocol, scope)

    server_class.create_application = create_application
    _scheme_patched = True
