"""The hub's periodic sweep: closes idle sockets (``ACTIVITY_TIMEOUT``, 4201) and sockets whose
token expired (4011, announced by the socket's protocol), prunes the in-memory history and the
cache channels' events, and drops the debug console's recorder once no page watches."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ..conf import broadcasting_settings
from ..core.codes import CLOSE_4011_TOKEN_EXPIRED, CLOSE_4201_PONG_TIMEOUT

if TYPE_CHECKING:
    from .hub import Hub

__all__ = ["sweep"]


async def sweep(hub: Hub) -> None:
    """Run for the life of the hub (a task ``Hub.start`` creates)."""
    while True:
        timeout = broadcasting_settings.ACTIVITY_TIMEOUT
        await asyncio.sleep(min(5.0, timeout / 4) if timeout else 5.0)
        now, wall = time.monotonic(), time.time()
        if hub.console is not None and not hub.console.watched:
            hub.console = None
        if hub.history is not None:
            hub.history.prune()
        if hub.cache is not None:
            hub.cache.prune()
        for conn in list(hub.connections.values()):
            expires = conn.identity.expires_at
            if expires is not None and wall >= expires:
                conn.protocol.token_expired(conn)
                await conn.close(CLOSE_4011_TOKEN_EXPIRED)
            elif timeout and now - conn.last_seen > timeout:
                await conn.close(CLOSE_4201_PONG_TIMEOUT)
