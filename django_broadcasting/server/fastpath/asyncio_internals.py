"""Asyncio internals the push path relies on: finishing a coroutine that suspended on its first step.

``Connection.push_frame`` runs the ASGI ``send`` coroutine's first step inline (no task per
delivery). When that step suspends on a future, ``finish`` drives the rest from a task. Doing so
clears the future's ``_asyncio_future_blocking`` flag, as ``asyncio.Task`` does before waiting
on a yielded future (CPython's documented protocol for future-likes, unchanged since 3.5; the
unit test ``tests/unit/test_connection.py`` covers it on the running interpreter).
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["finish"]


async def finish(coro: Any, pending: Any) -> None:
    """Drive a coroutine that suspended on its first step to completion.

    ``pending`` is what the coroutine yielded (an asyncio future, or None for a bare
    yield). Awaiting it here parks this task exactly as a task running the coroutine
    would; the coroutine then reads the future's result (or exception) itself on resume.
    """
    while True:
        if pending is None:
            await asyncio.sleep(0)
        else:
            # The coroutine marked the future as awaited ("blocking") when it yielded it; a
            # task clears that flag before waiting on it, and so must we, or awaiting it again
            # raises "await wasn't used with future".
            pending._asyncio_future_blocking = False
            try:
                await pending
            except BaseException:  # noqa: BLE001 - the coroutine re-raises it when it resumes
                pass
        try:
            pending = coro.send(None)
        except StopIteration:
            return
