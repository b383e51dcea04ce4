"""Daphne's shutdown: every socket gets a 1012 ("service restart") before Twisted stops.

``graceful_stop`` is what runs; the Twisted hook that runs it (private state of daphne and
Twisted, version-gated) lives in ``fastpath/daphne.py``. (Uvicorn sends 1012 itself and speaks
lifespan, see ``lifespan.py``.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..core.codes import WS_1012_SERVICE_RESTART

if TYPE_CHECKING:
    from .hub import Hub

logger = logging.getLogger("django_broadcasting.server")

__all__ = ["graceful_stop", "install_twisted_shutdown_hook"]


def install_twisted_shutdown_hook(hub: Hub) -> None:
    """Register ``graceful_stop(hub)`` to run before Twisted's shutdown (a no-op outside daphne)."""
    from .fastpath.daphne import install_shutdown_hook

    install_shutdown_hook(lambda: graceful_stop(hub))


async def graceful_stop(hub: Hub) -> None:
    await hub.shutdown(WS_1012_SERVICE_RESTART)
    # Twisted closes transports without flushing their write buffers once shutdown
    # proceeds: give the close frames a moment on the wire first.
    await asyncio.sleep(0.2)
    # Then leave the cluster (presence members go now, not after PRESENCE_TTL), as the
    # lifespan shutdown does under uvicorn; bounded, in case Redis is unreachable.
    try:
        await asyncio.wait_for(hub.stop(), timeout=3)
    except Exception:  # noqa: BLE001 - exiting anyway
        logger.debug("hub stop at shutdown did not finish", exc_info=True)
