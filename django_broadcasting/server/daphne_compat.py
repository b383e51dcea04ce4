"""Daphne specifics: let the server send the standard "going away" close codes.

Autobahn (under daphne) refuses any server close code other than 1000 and 3000-4999, so
``{"type": "websocket.close", "code": 1012}`` raises inside daphne and the client sees an
abnormal 1006 instead of "service restart". RFC 6455 allows 1001/1011/1012/1013 from a
server, and uvicorn sends 1012 on shutdown, so this patch sends those codes as-is.
Applied once, only in a process that runs daphne.
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
