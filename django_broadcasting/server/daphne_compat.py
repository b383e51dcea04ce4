"""Daphne specifics: the standard "going away" close codes, and the scheme of WebSocket scopes.

Autobahn (under daphne) refuses any server close code other than 1000 and 3000-4999, so
``{"type": "websocket.close", "code": 1012}`` raises inside daphne and the client sees an
abnormal 1006 instead of "service restart". RFC 6455 allows 1001/1011/1012/1013 from a
server, and uvicorn sends 1012 on shutdown, so this patch sends those codes as-is.
Applied once, only in a process that runs daphne.

Daphne also leaves ``scheme`` out of WebSocket scopes (django/daphne#538), even when it
terminates TLS itself, so every socket looked like ``ws`` and the origin policy compared
``https://`` pages with an ``http://`` origin. ``report_websocket_scheme`` sets ``"wss"`` when
the connection's transport is TLS and ``"ws"`` otherwise, as daphne's HTTP scopes already say
``https``/``http``. The auth middleware applies it when it is built in a process that has
imported daphne's server.
"""

from __future__ import annotations

from typing import Any

_STANDARD_SERVER_CODES = frozenset({1001, 1011, 1012, 1013})
_patched = False


def allow_standard_close_codes() -> None:
    """Patch daphne's ``serverClose`` so 1001/1011/1012/1013 reach the client (idempotent)."""
    global _patched
    if _patched:
        return
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # pragma: no cover - daphne not installed
        return
    original = WebSocketProtocol.serverClose

    def server_close(self: Any, code: int | None = None) -> None:
        if code in _STANDARD_SERVER_CODES and self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code)

    WebSocketProtocol.serverClose = server_close
    _patched = True


from ..auth.daphne_scope import report_websocket_scheme  # noqa: E402, F401  (compatibility path)
