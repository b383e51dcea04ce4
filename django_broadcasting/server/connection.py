"""``Connection``: one WebSocket as the hub sees it, with a bounded, mostly task-free send path.

The fan-out loop calls ``push(frame)`` for every subscriber. ``push`` never blocks and never
creates a task or an object per delivery in the common case: it starts the ASGI ``send``
coroutine and steps it once by hand. ASGI servers (daphne, uvicorn) finish a send without
suspending unless the socket's write buffer is full, so the coroutine usually completes on
that first step. Only when it does suspend is a task created to finish it; frames pushed
meanwhile wait in a bounded backlog, and a client whose backlog overflows is closed with
``CLOSE_4200_RECONNECT`` (it reconnects and recovers missed messages) instead of slowing
everyone else down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .codes import CLOSE_4200_RECONNECT

logger = logging.getLogger("django_broadcasting.server")

Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _finish(coro: Any, pending: Any) -> None:
    """Drive a coroutine that suspended on its first step to completion.

    ``pending`` is what the coroutine yielded (an asyncio future, or None for a bare
    yield). Awaiting it here parks this task exactly as a task running the coroutine
    would; the coroutine then reads the future's result (or exception) itself on resume.
    """
    while True:
        if pending is None:
            await asyncio.sleep(0)
        else:
            try:
                await pending
            except BaseException:  # noqa: BLE001 - the coroutine re-raises it when it resumes
                pass
        try:
            pending = coro.send(None)
        except StopIteration:
            return


class Connection:
    """A subscriber socket: its ASGI ``send``, identity, subscriptions and outgoing buffer."""

    __slots__ = (
        "socket_id", "protocol", "identity", "channels", "closed", "last_seen", "opened_at",
        "frames_in", "frames_out", "_send", "_backlog", "_limit", "_task", "_close", "_rate",
        "__weakref__", "scope_info", "_close_sent",
    )

    def __init__(
        self,
        send: Send,
        socket_id: str,
        protocol: Any,
        identity: Any,
        *,
        buffer_limit: int,
        on_close: Callable[[int], Awaitable[None]],
    ) -> None:
        self.socket_id = socket_id
        self.protocol = protocol
        self.identity = identity
        self.channels: set[str] = set()
        self.closed = False
        self.opened_at = self.last_seen = time.monotonic()
        self.frames_in = 0
        self.frames_out = 0
        self._send = send
        self._backlog: deque[str] | None = None
        self._limit = buffer_limit
        self._task: asyncio.Task | None = None
        self._close = on_close
        self._rate: Any = None
        self.scope_info: dict[str, Any] = {}
        self._close_sent = False

    # -- sending -------------------------------------------------------------------------
    def push(self, frame: str) -> None:
        """Queue ``frame`` for this socket without blocking the caller."""
        if self.closed:
            return
        backlog = self._backlog
        if backlog is not None:
            if len(backlog) >= self._limit:
                self._overflow()
                return
            backlog.append(frame)
            return
        self.frames_out += 1
        coro = self._send({"type": "websocket.send", "text": frame})
        try:
            pending = coro.send(None)
        except StopIteration:
            return
        except Exception as exc:  # the socket is gone; the disconnect event cleans up
            self._failed(exc)
            return
        self._backlog = deque()
        self._task = asyncio.get_running_loop().create_task(self._drain(coro, pending))

    async def _drain(self, coro: Any, pending: Any) -> None:
        try:
            await _finish(coro, pending)
            backlog = self._backlog
            while backlog:
                frame = backlog.popleft()
                self.frames_out += 1
                await self._send({"type": "websocket.send", "text": frame})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
        finally:
            self._backlog = None
            self._task = None

    def _failed(self, exc: BaseException) -> None:
        logger.debug("send to %s failed: %r", self.socket_id, exc)
        self.closed = True
        self._backlog = None

    def _overflow(self) -> None:
        logger.info("closing slow client %s: %d frames queued", self.socket_id, self._limit)
        self.closed = True
        self._backlog = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        asyncio.get_running_loop().create_task(self._close(CLOSE_4200_RECONNECT))

    @property
    def buffered(self) -> int:
        """How many frames wait behind a send that could not complete at once."""
        return len(self._backlog) if self._backlog else 0

    async def close(self, code: int) -> None:
        """Close the socket with ``code`` (idempotent)."""
        if self._close_sent:
            return
        self._close_sent = True
        self.closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        try:
            # No wait_for here: it would add a task, and the shutdown path steps this
            # coroutine synchronously from a signal handler.
            await self._send({"type": "websocket.close", "code": code})
        except Exception:  # already closed or the peer is gone
            pass

    def __repr__(self) -> str:
        return f"<Connection {self.socket_id} {getattr(self.protocol, 'name', '?')}>"
