"""Whether the caller runs on a given event loop's thread, with asyncio's public API only.

Sync readers of the hub (the stats API, the admin page) hand work to the server's loop unless
they already run on it; this answers that without reading the loop's private ``_thread_id``.
"""

from __future__ import annotations

import asyncio

__all__ = ["on_loop"]


def on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """True when ``loop`` is the event loop running in the calling thread."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
