"""Uvicorn's process signal handlers, wrapped so Pusher clients hear 4200 before uvicorn's 1012.

Uvicorn closes every WebSocket with 1012 itself, before the lifespan shutdown runs; pusher-js
treats 1012 as a plain disconnect. Uvicorn's own SIGTERM/SIGINT handler only sets a flag that
its main loop checks every 0.1 s (private behaviour of ``uvicorn.Server``), so closes scheduled
from a wrapping handler go out first. Installed only for a uvicorn version listed in
``fastpath.TESTED["uvicorn"]``; otherwise (the fallback) the handlers are left alone and Pusher
clients see uvicorn's 1012.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["wrap_signal_handlers"]


def wrap_signal_handlers(on_signal: Callable[[], Any]) -> bool:
    """Under a tested uvicorn, run ``on_signal()`` (a coroutine function) on this loop at SIGTERM/SIGINT
    before uvicorn's handler; return True when the handlers were wrapped."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if "uvicorn" not in sys.modules or getattr(reactor, "running", False):
        return False  # not uvicorn (daphne imports uvicorn nowhere; its reactor runs)
    if threading.current_thread() is not threading.main_thread():
        return False
    from . import _gate

    if not _gate("uvicorn"):
        return False
    loop = asyncio.get_running_loop()
    wrapped = False
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        if not callable(previous) or getattr(previous, "pusher_hook", False):
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(lambda: loop.create_task(on_signal()))
            previous(signum, frame)

        handler.pusher_hook = True  # type: ignore[attr-defined]
        signal.signal(sig, handler)
        wrapped = True
    return wrapped
