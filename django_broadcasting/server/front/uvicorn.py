"""A lean WebSocket protocol for uvicorn: ``uvicorn --ws django_broadcasting.server.front.uvicorn:WebSocketProtocol``.

Uvicorn's own WebSocket implementations parse the upgrade request a second time (uvicorn has
already parsed it with httptools), build a ``websockets`` or ``wsproto`` connection object, an
``asyncio.Queue``, events and a ping timer per socket. For a server holding thousands of mostly
idle sockets that is most of the handshake's CPU and most of a socket's memory. This protocol:

- splits the request uvicorn rebuilt for it (``METHOD URL HTTP/1.1`` and ``name: value`` lines),
  checks ``Sec-WebSocket-Version: 13`` (else 426) and the key (else 400), and answers the
  ``websocket.accept`` with one ``transport.write`` of the 101;
- keeps per-socket state in ``__slots__``: no queue (a pending ``receive`` is one future; events
  that arrive while nobody waits go to a short list), no events, no timer while open;
- pings every open socket from one timer per server (``ws_ping_interval``; a socket that sends
  nothing, not even a pong, within ``ws_ping_timeout`` of a ping is closed with 1011), instead of
  two timers per socket;
- negotiates no extension: permessage-deflate is never offered back (``COMPRESSION`` users run
  uvicorn's ``websockets-sansio``; see docs/server.md).

What the ASGI application sees is what uvicorn's implementations give it: the same scope
(``client``, ``server``, ``root_path``, ``subprotocols``, ``state``, the
``websocket.http.response`` extension), ``websocket.accept`` with a subprotocol and headers,
``websocket.close`` with a code and reason, a denial before accept as HTTP 403, server
shutdown as close 1012, ``ws_max_size`` as close 1009 (checked on the frame header, before the
payload is buffered). RFC 6455 is enforced: client frames must be masked, reserved bits clear,
control frames short and final, continuations in order, text valid UTF-8 (else 1007), close
codes valid; a client ping gets a pong; the close handshake is answered and awaited.

``direct_writer()`` lets the hub write pre-framed broadcasts straight to the socket (see
``server/connection.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
)

from . import handshake, wire
from .handshake import HandshakeError
from .reader import CLOSED, CLOSING, HANDSHAKE, OPEN, FrameReader
from .shared import schedule_keepalive, shared_for
from .wire import ProtocolViolation

logger = logging.getLogger("uvicorn.error")

CLOSE_TIMEOUT = 10.0  # seconds to wait for the peer's close frame after ours


class WebSocketProtocol(FrameReader, asyncio.Protocol):
    """One WebSocket connection handed over by uvicorn's HTTP protocol after an upgrade request."""

    __slots__ = (
        "shared", "transport", "client", "server", "scope", "state", "response", "accept",
        "buf", "fragments", "frag_opcode", "frag_size", "inbox", "waiter", "closed_event",
        "read_paused", "paused", "drain", "close_timer", "ping_due", "pinged", "task",
    )  # fmt: skip

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        self.shared = shared_for(config, server_state, app_state, type(self))
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int | None] | None = None
        self.scope: dict[str, Any] | None = None
        self.state = HANDSHAKE
        self.response: list[Any] | None = None  # [status, headers, body] of a websocket.http.response
        self.accept: bytes | None = None  # Sec-WebSocket-Accept, until the app accepts
        self.buf: bytes = b""  # bytes of an incomplete frame (or request)
        self.fragments: list[bytes] | None = None
        self.frag_opcode = 0
        self.frag_size = 0
        self.inbox: list[dict[str, Any]] | None = None  # events nobody waited for yet
        self.waiter: asyncio.Future | None = None  # the application's pending receive()
        self.closed_event: dict[str, Any] | None = None  # the disconnect event, once there is one
        self.read_paused = False
        self.paused = False  # the transport's write buffer is over its high-water mark
        self.drain: asyncio.Future | None = None
        self.close_timer: asyncio.TimerHandle | None = None
        self.ping_due = 0.0
        self.pinged = 0.0  # when the unanswered ping went out (0: none outstanding)
        self.task: asyncio.Task | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        self.shared.connections.add(self)
        self.transport = transport  # type: ignore[assignment]
        self.server = get_local_addr(transport)  # type: ignore[arg-type]
        self.client = get_remote_addr(transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.shared.connections.discard(self)
        # As uvicorn's implementations: 1005 once the handshake completed, 1006 before.
        code = wire.CLOSE_1006_ABNORMAL if self.state == HANDSHAKE else wire.CLOSE_1005_NO_STATUS
        self.state = CLOSED
        self.pinged = 0.0
        self._disconnected(code, "")
        self._wake_drain()
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None
        if exc is None:
            self.transport.close()

    def eof_received(self) -> None:
        pass  # returning None lets the transport close itself

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._wake_drain()

    def shutdown(self) -> None:
        """Uvicorn is stopping: close open sockets with 1012, answer a pending handshake with 500."""
        state = self.state
        if state == CLOSING:
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
        elif state == OPEN:
            self._disconnected(wire.CLOSE_1012_SERVICE_RESTART, "")
            self.transport.write(wire.close_frame(wire.CLOSE_1012_SERVICE_RESTART))
            self.state = CLOSING
        elif state == HANDSHAKE:
            self._send_500()
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if self.state == HANDSHAKE:
            if self.scope is None:
                self._handshake(data)
            elif len(data) > self.shared.max_size + 14:  # a client that will not wait for the 101
                self._fail(wire.CLOSE_1009_TOO_BIG, "too much data before the handshake completed")
            else:
                self.buf = data  # frames sent before our 101: read once the application accepts
            return
        if self.state == CLOSED:
            return
        self.pinged = 0.0  # anything from the peer answers an outstanding keepalive ping
        try:
            self._frames(data)
        except ProtocolViolation as exc:
            self._fail(exc.code, exc.reason)

    # -- handshake -----------------------------------------------------------------------
    def _handshake(self, data: bytes) -> None:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.buf = data  # uvicorn hands over the whole request; be safe anyway
            return
        try:
            target, headers, self.accept, subprotocols = handshake.parse_upgrade(data[:end])
            raw_path, _, query = target.partition(b"?")
            path = raw_path.decode("ascii")
        except HandshakeError as exc:
            self._refuse(exc.status, str(exc), exc.headers)
            return
        except UnicodeDecodeError:
            self._refuse(400, "Invalid WebSocket handshake request.")
            return
        shared = self.shared
        self.scope = {
            "type": "websocket",
            "asgi": shared.asgi,
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(self.transport) else "ws",
            "server": self.server,
            "client": self.client,
            "root_path": shared.root_path,
            "path": shared.root_path + (unquote(path) if "%" in path else path),
            "raw_path": shared.root_path_bytes + raw_path,
            "query_string": query,
            "headers": headers,
            "subprotocols": subprotocols,
            "state": shared.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self.inbox = [{"type": "websocket.connect"}]
        task = self.task = shared.loop.create_task(self._run_asgi())
        shared.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _refuse(self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        logger.info('%s - "WebSocket handshake refused" %d: %s', self._peer(), status, message)
        self.state = CLOSED
        body = message.encode()
        self.transport.write(handshake.http_response(status, [*self.shared.default_headers, *headers], body))
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else ""

    # -- ASGI ----------------------------------------------------------------------------
    async def _run_asgi(self) -> None:
        scope = self.scope
        try:
            result = await self.shared.app(scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            logger.exception("Exception in ASGI application\n")
            self._send_500()
        else:
            if self.state == HANDSHAKE and self.response is None:
                logger.error("ASGI callable returned without completing handshake.")
                self._send_500()
            elif result is not None:
                logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None:
            self.transport.close()

    def _task_done(self, task: asyncio.Task) -> None:
        self.shared.tasks.discard(task)
        self.task = None

    def _disconnected(self, code: int, reason: str) -> None:
        """Hand the application its ``websocket.disconnect`` (once; later receives get it again)."""
        if self.closed_event is not None:
            return
        event = self.closed_event = {"type": "websocket.disconnect", "code": code, "reason": reason}
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            self.waiter = None
            waiter.set_result(event)
        elif self.inbox is None:
            self.inbox = [event]
        else:
            self.inbox.append(event)

    async def receive(self) -> dict[str, Any]:
        """ASGI receive: the next event, waiting on one future (no queue) when there is none."""
        inbox = self.inbox
        if inbox:
            event = inbox.pop(0)
            if not inbox:
                self.inbox = None
                if self.read_paused and self.state != CLOSED:
                    self.read_paused = False
                    self.transport.resume_reading()
            return event
        if self.closed_event is not None:
            return self.closed_event
        waiter = self.waiter = self.shared.loop.create_future()
        try:
            return await waiter
        finally:
            if self.waiter is waiter:
                self.waiter = None

    async def send(self, message: dict[str, Any]) -> None:
        """ASGI send (accept, send, close, and the ``websocket.http.response`` extension)."""
        if self.paused and self.state != CLOSED:
            await self._drained()
        state = self.state
        kind = message["type"]
        if (
            state == CLOSED
            and self.scope is not None
            and (self.closed_event is None or kind != "websocket.close")
        ):
            raise ClientDisconnected()
        if state == OPEN:
            if kind == "websocket.send":
                data = message.get("bytes")
                if data is not None:
                    self.transport.write(wire.frame(wire.OP_BINARY, data))
                else:
                    text = message.get("text")
                    if text is not None:
                        self.transport.write(wire.frame(wire.OP_TEXT, text.encode()))
            elif kind == "websocket.close":
                code = message.get("code") or 1000
                reason = message.get("reason") or ""
                self._disconnected(code, reason)
                self.transport.write(wire.close_frame(code, reason))
                self.state = CLOSING
                self.pinged = 0.0
                if self.read_paused:
                    self.read_paused = False
                    self.transport.resume_reading()
                self.close_timer = self.shared.loop.call_later(CLOSE_TIMEOUT, self.transport.close)
            else:
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'."
                )
        elif state == HANDSHAKE:
            if self.response is not None:
                self._response_body(message)
            elif kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                # Denied before the handshake completed: HTTP 403.
                logger.info(
                    '%s - "WebSocket %s" 403',
                    get_client_addr(self.scope),
                    get_path_with_query_string(self.scope),
                )
                self._disconnected(wire.CLOSE_1006_ABNORMAL, "")
                self.state = CLOSED
                self.transport.write(handshake.http_response(403, list(self.shared.default_headers)))
                self.transport.close()
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status < 600:
                    raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
                logger.info(
                    '%s - "WebSocket %s" %d',
                    get_client_addr(self.scope), get_path_with_query_string(self.scope), status,
                )  # fmt: skip
                self.response = [status, list(message.get("headers", [])), []]
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' "
                    f"or 'websocket.http.response.start' but got '{kind}'."
                )
        elif kind != "websocket.close":  # CLOSING, or CLOSED after a close: a second close is a no-op
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")

    def _accept(self, message: dict[str, Any]) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                '%s - "WebSocket %s" [accepted]',
                get_client_addr(self.scope),
                get_path_with_query_string(self.scope),
            )
        if self.transport.is_closing():
            self.state = CLOSED  # connection_lost follows; sends meanwhile raise ClientDisconnected
            return
        self.transport.write(
            handshake.switching_protocols(
                self.accept, self.shared.default_headers, message.get("headers"), message.get("subprotocol")
            )
        )
        self.accept = None
        self.state = OPEN
        shared = self.shared
        if shared.ping_interval is not None:
            self.ping_due = shared.loop.time() + shared.ping_interval
            if shared.ticker is None:
                schedule_keepalive(shared)
        if self.buf:  # frames the client sent before it saw the 101
            data, self.buf = self.buf, b""
            shared.loop.call_soon(self.data_received, data)

    def _response_body(self, message: dict[str, Any]) -> None:
        if message["type"] != "websocket.http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'websocket.http.response.body' but got '{message['type']}'."
            )
        response = self.response
        assert response is not None
        response[2].append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status, headers, body = response
        self._disconnected(wire.CLOSE_1006_ABNORMAL, "")
        self.state = CLOSED
        self.transport.write(
            handshake.http_response(status, [*self.shared.default_headers, *headers], b"".join(body))
        )
        self.transport.close()

    def _send_500(self) -> None:
        if self.state != HANDSHAKE or self.response is not None or self.transport.is_closing():
            return
        self.state = CLOSED
        self.transport.write(
            handshake.http_response(500, list(self.shared.default_headers), b"Internal Server Error")
        )

    # -- writing -------------------------------------------------------------------------
    async def _drained(self) -> None:
        drain = self.drain
        if drain is None:
            drain = self.drain = self.shared.loop.create_future()
        await asyncio.shield(drain)

    def _wake_drain(self) -> None:
        drain, self.drain = self.drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def write_frame(self, data: bytes) -> bool:
        """Write pre-framed server bytes now if the socket is open and writable; else return False.

        False (nothing written) whenever ``send`` would not simply write: closing, closed, or
        the transport's buffer over its high-water mark. The caller then takes ``send``.
        """
        if self.state != OPEN or self.paused or self.transport.is_closing():
            return False
        self.transport.write(data)
        return True

    def is_open(self) -> bool:
        return self.state == OPEN

    def keepalive_timeout(self) -> None:
        """No answer to a keepalive ping within ``ws_ping_timeout``: close with 1011."""
        logger.debug("%s - WebSocket keepalive ping timeout", self._peer())
        self._fail(wire.CLOSE_1011_INTERNAL_ERROR, "keepalive ping timeout")

    def direct_writer(self) -> Callable[[bytes], bool] | None:
        """The hub's direct-write hook (``server/connection.py``): ``write_frame``; no extension to apply."""
        return self.write_frame


# Uvicorn imports the ``--ws`` class when it loads its configuration, before it listens: this is
# its start-up line saying which WebSocket protocol serves (its own say nothing).
logger.info(
    "WebSocket protocol: django_broadcasting.server.front.uvicorn:WebSocketProtocol (no permessage-deflate)"
)
