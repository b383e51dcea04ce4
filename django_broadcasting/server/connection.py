"""``Connection``: one WebSocket as the hub sees it, with a bounded, mostly task-free send path.

The fan-out loop calls ``push_frame(frame)`` for every subscriber with one ``Frame`` built per
broadcast (text, ASGI message and wire bytes, each computed once). Two paths, neither of which
blocks or creates a task or an object per delivery in the common case:

- Direct write. When the ASGI server is one we know, at a version a contract test covers
  (``server/fastpath/``: this project's uvicorn front, whose protocol offers ``direct_writer()``;
  uvicorn's ``websockets-sansio`` and ``websockets`` implementations; daphne) and the socket
  negotiated no extension
  (permessage-deflate changes every frame), the frame's wire bytes, framed once per broadcast,
  are written to the socket's transport. That is what ``websockets.broadcast()`` and autobahn's
  ``sendPreparedMessage`` do; it skips the per-socket ASGI ``send`` coroutines (ours, Channels'
  session wrapper's and the server's), which cost more than the write itself. Every condition
  the server's own ``send`` checks (open, not closing, writable) is checked first; when one
  fails, the ASGI path below takes the frame, so backpressure and errors behave as before.
- ASGI send. ``push`` starts the ASGI ``send`` coroutine and steps it once by hand. ASGI servers
  finish a send without suspending unless the socket's write buffer is full, so the coroutine
  usually completes on that first step. Only when it does suspend is a task created to finish
  it; frames pushed meanwhile wait in a bounded backlog, and a client whose backlog overflows is
  closed with ``CLOSE_4200_RECONNECT`` (it reconnects and recovers missed messages) instead of
  slowing everyone else down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.codes import CLOSE_4200_RECONNECT
from .fastpath import SlowClient, Writer, direct_writer, writer_for  # noqa: F401  (direct_writer: older path)
from .fastpath.asyncio_internals import finish as _finish

logger = logging.getLogger("django_broadcasting.server")

Send = Callable[[dict[str, Any]], Awaitable[None]]


def wire_frame(text: str) -> bytes:
    """Encode ``text`` as one unmasked, unfragmented server-to-client text frame (RFC 6455)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


class Frame:
    """One outgoing frame shared by every recipient of a broadcast: built once, never copied.

    ``wire`` is the framed bytes for direct writes (a plain attribute: read once per delivery);
    ``message`` the ASGI event for sockets written through their server's ``send`` (built on
    first use; servers only read it, so one dict serves every such socket).
    """

    __slots__ = ("text", "wire", "_message")

    def __init__(self, text: str) -> None:
        self.text = text
        payload = text.encode()  # wire_frame(), inlined: this runs once per broadcast
        n = len(payload)
        if n < 126:
            self.wire = bytes((0x81, n)) + payload
        elif n < 65536:
            self.wire = b"\x81\x7e" + n.to_bytes(2, "big") + payload
        else:
            self.wire = b"\x81\x7f" + n.to_bytes(8, "big") + payload
        self._message: dict[str, Any] | None = None

    @property
    def message(self) -> dict[str, Any]:
        message = self._message
        if message is None:
            message = self._message = {"type": "websocket.send", "text": self.text}
        return message


class Connection:
    """A subscriber socket: its ASGI ``send``, identity, subscriptions and outgoing buffer."""

    __slots__ = (
        "socket_id",
        "protocol",
        "identity",
        "address",
        "channels",
        "closed",
        "last_seen",
        "opened_at",
        "frames_in",
        "frames_out",
        "_send",
        "_backlog",
        "_limit",
        "_task",
        "_close",
        "_rate",
        "__weakref__",
        "scope_info",
        "_close_sent",
        "_write",
        "app",
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
        self.address = "unknown"  # the client address limits count against (see addresses.py)
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
        # The Pusher app (``pusher_apps.PusherApp``) the socket belongs to: its key's app on
        # ``/app/{key}``, the default app on ``/ws``.
        self.app: Any = None
        self._close_sent = False
        self._write: Writer | None = writer_for(send)

    # -- sending -------------------------------------------------------------------------
    def push(self, frame: str) -> None:
        """Queue the text ``frame`` for this socket without blocking the caller."""
        if self.closed:
            return
        backlog = self._backlog
        if backlog is not None:
            if len(backlog) >= self._limit:
                self._overflow()
                return
            backlog.append(frame)
            return
        write = self._write
        if write is not None:
            # The same direct write as broadcasts (connected, subscribed, pong...): uvicorn's
            # send path costs more than the frame.
            try:
                written = write(wire_frame(frame))
            except SlowClient:
                self._overflow()
                return
            if written:
                self.frames_out += 1
                return
        self._send_now({"type": "websocket.send", "text": frame})

    def push_frame(self, frame: Frame) -> None:
        """Queue a shared broadcast ``Frame``: a direct write when possible, else the ASGI send."""
        if self.closed:
            return
        if self._backlog is None:
            write = self._write
            if write is not None:
                try:
                    written = write(frame.wire)
                except SlowClient:
                    self._overflow()
                    return
                if written:
                    self.frames_out += 1
                    return
            self._send_now(frame.message)
            return
        if len(self._backlog) >= self._limit:
            self._overflow()
            return
        self._backlog.append(frame.text)

    def _send_now(self, message: dict[str, Any]) -> None:
        # Step the ASGI send once; only a send that suspends costs a task (see module docstring).
        self.frames_out += 1
        coro = self._send(message)
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
