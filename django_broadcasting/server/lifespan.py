"""ASGI lifespan support: start the hub with the server, close sockets with 1012 on shutdown.

Uvicorn speaks the lifespan protocol; daphne does not (there the hub starts with the first
WebSocket and each consumer closes its socket with 1012 when daphne cancels it at shutdown).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import markcoroutinefunction

from ..core.codes import WS_1012_SERVICE_RESTART
from .announce import serve_at, serving_started, when_daphne_serves
from .hub import get_hub, mark_serving

logger = logging.getLogger("django_broadcasting.server")


class LifespanApp:
    """Wrap an ASGI app, answering ``lifespan`` scopes and passing every other scope on."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._recorded = False
        self._serving = False
        when_daphne_serves()  # record our address once daphne listens (see announce.py)

    @markcoroutinefunction  # an ASGI 3 app to servers that look (uvicorn, asgiref)
    def __call__(self, scope: dict, receive: Any, send: Any) -> Awaitable[None]:
        if not self._serving:
            # The server's startup marks the process as serving (lifespan startup under uvicorn,
            # the first scope under daphne), so local publishes reach the hub directly.
            self._serving = True
            mark_serving()
        if scope["type"] != "lifespan":
            if not self._recorded and scope.get("server"):
                # Tell publishers on this machine where we listen, and keep telling (see announce.py).
                self._recorded = True
                serve_at(*scope["server"][:2])
            # The inner app's coroutine itself, not one awaiting it: a WebSocket lives as long as
            # its coroutine chain, and every link costs memory for the socket's lifetime.
            return self.app(scope, receive, send)
        return self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                serving_started()  # record our address once uvicorn listens (see announce.py)
                try:
                    await get_hub().start()
                except Exception as exc:  # report, so the server refuses to start
                    logger.exception("broadcasting hub failed to start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                hub = get_hub()
                await hub.shutdown(WS_1012_SERVICE_RESTART)
                await hub.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
