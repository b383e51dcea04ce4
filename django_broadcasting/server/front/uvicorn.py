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
- pings every open socket from one timer per process (``ws_ping_interval``; a socket that sends
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

from . import wire
from .wire import HandshakeError, ProtocolViolation

logger = logging.getLogger("uvicorn.error")

# Socket states
HANDSHAKE, OPEN, CLOSING, CLOSED = 0, 1, 2, 3
CLOSE_TIMEOUT = 10.0  # seconds to wait for the peer's close frame after ours
PING_PAYLOAD = b"dbws"


class _Shared:
    """What every socket of one uvicorn server shares (read once, not copied per socket)."""

    __slots__ = (
        "app", "loop", "root_path", "root_path_bytes", "asgi", "app_state", "connections", "tasks",
        "default_headers", "max_size", "ping_interval", "ping_timeout", "ticker",
    )  # fmt: skip

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any]) -> None:
        if not config.loaded:
            config.load()  # pragma: no cover - uvicorn loads it before serving
        self.app = config.loaded_app
        self.loop = asyncio.get_event_loop()
        self.root_path = config.root_path
        self.root_path_bytes = config.root_path.encode("ascii")
        self.asgi = {"version": config.asgi_version, "spec_version": "2.4"}
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers  # a list uvicorn refreshes (date)
        self.max_size = max_message_size(config.ws_max_size)
        interval = config.ws_ping_interval
        self.ping_interval = float(interval) if interval and interval > 0 else None
        self.ping_timeout = config.ws_ping_timeout if config.ws_ping_timeout else None
        self.ticker: asyncio.TimerHandle | None = None


_shared: dict[int, tuple[Any, _Shared]] = {}


def _shared_for(config: Any, server_state: Any, app_state: dict[str, Any]) -> _Shared:
    entry = _shared.get(id(server_state))
    if entry is None or entry[0] is not server_state:
        entry = (server_state, _Shared(config, server_state, app_state))
        _shared[id(server_state)] = entry
    return entry[1]


def max_message_size(configured: int | None) -> int:
    """The largest client message accepted: uvicorn's ``ws_max_size``, capped by the project's.

    The application refuses frames over ``MAX_FRAME_SIZE`` characters (error 4009); none of those
    takes more than four bytes per character, so a larger message is closed with 1009 here before
    it is buffered, whatever ``--ws-max-size`` says (uvicorn's default is 16 MiB).
    """
    from ...conf import broadcasting_settings

    ours = 4 * broadcasting_settings.MAX_FRAME_SIZE
    return min(configured, ours) if configured else ours


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection handed over by uvicorn's HTTP protocol after an upgrade request."""

    __slots__ = (
        "shared", "transport", "client", "server", "scope", "state", "response", "accept",
        "buf", "fragments", "frag_opcode", "frag_size", "inbox", "waiter", "closed_event",
        "read_paused", "paused", "drain", "close_timer", "ping_due", "pinged", "task",
    )  # fmt: skip

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None) -> None:
        self.shared = _shared_for(config, server_state, app_state)
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
        lines = data[:end].split(b"\r\n")
        try:
            method, target, _version = lines[0].split(b" ", 2)
            headers: list[tuple[bytes, bytes]] = []
            key = version = None
            subprotocols: list[str] = []
            for line in lines[1:]:
                name, _, value = line.partition(b": ")
                name = name.lower()
                headers.append((name, value))
                if name == b"sec-websocket-key":
                    if key is not None:
                        raise HandshakeError(400, "Duplicate Sec-WebSocket-Key header.")
                    key = value
                elif name == b"sec-websocket-version":
                    version = value
                elif name == b"sec-websocket-protocol":
                    subprotocols += [t.strip() for t in value.decode("latin-1").split(",") if t.strip()]
            if method != b"GET":
                raise HandshakeError(405, "A WebSocket handshake is a GET request.", ((b"allow", b"GET"),))
            wire.check_version(version)
            self.accept = wire.accept_key(wire.check_key(key))
            raw_path, _, query = target.partition(b"?")
            path = raw_path.decode("ascii")
        except HandshakeError as exc:
            self._refuse(exc.status, str(exc), exc.headers)
            return
        except (ValueError, UnicodeDecodeError):
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
        self.transport.write(wire.http_response(status, [*self.shared.default_headers, *headers], body))
        self.transport.close()

    def _peer(self) -> str:
        return "%s:%d" % self.client if self.client else ""

    # -- frames in -----------------------------------------------------------------------
    def _frames(self, data: bytes) -> None:
        pos, end = 0, len(data)
        max_size = self.shared.max_size
        while end - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            if b0 & 0x70:
                raise ProtocolViolation(wire.CLOSE_1002_PROTOCOL_ERROR, "reserved bits must be 0")
            if not b1 & 0x80:
                raise ProtocolViolation(wire.CLOSE_1002_PROTOCOL_ERROR, "client frames must be masked")
            opcode = b0 & 0x0F
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if end - head < 2:
                    break
                length = int.from_bytes(data[head : head + 2], "big")
                head += 2
            elif length == 127:
                if end - head < 8:
                    break
                length = int.from_bytes(data[head : head + 8], "big")
                head += 8
            if opcode >= 0x8:
                if not b0 & 0x80 or length > 125:
                    raise ProtocolViolation(wire.CLOSE_1002_PROTOCOL_ERROR, "fragmented or long control frame")
            elif length + self.frag_size > max_size:
                # Refused on the header: the payload is never buffered.
                raise ProtocolViolation(
                    wire.CLOSE_1009_TOO_BIG, f"message exceeds the maximum size ({max_size} bytes)"
                )
            stop = head + 4 + length
            if stop > end:
                break
            payload = wire.unmask(data[head + 4 : stop], data[head : head + 4]) if length else b""
            pos = stop
            self._frame(opcode, bool(b0 & 0x80), payload)
            if self.state == CLOSED:
                return
        if pos < end:
            self.buf = data[pos:]

    def _frame(self, opcode: int, fin: bool, payload: bytes) -> None:
        if opcode == wire.OP_TEXT or opcode == wire.OP_BINARY:
            if self.fragments is not None:
                raise ProtocolViolation(wire.CLOSE_1002_PROTOCOL_ERROR, "new message inside a fragmented one")
            if fin:
                self._message(opcode, payload)
            else:
                self.fragments = [payload]
                self.frag_opcode = opcode
                self.frag_size = len(payload)
        elif opcode == wire.OP_CONT:
            fragments = self.fragments
            if fragments is None:
                raise ProtocolViolation(wire.CLOSE_1002_PROTOCOL_ERROR, "continuation without a message")
            fragments.append(payload)
            self.frag_size += len(payload)
            if fin:
                self.fragments = None
                self.frag_size = 0
                self._message(self.frag_opcode, b"".join(fragments))
        elif opcode == wire.OP_PING:
            if self.state == OPEN:
                self.transport.write(wire.frame(wire.OP_PONG, payload))
        elif opcode == wire.OP_PONG:
            pass  # data_received already counted it as an answer
        elif opcode == wire.OP_CLOSE:
            self._close_received(payload)
        else:
            raise ProtocolViolation(wire.CLOSE_1002_PROTOCOL_ERROR, f"unknown opcode {opcode}")

    def _message(self, opcode: int, payload: bytes) -> None:
        if self.state != OPEN:
            return  # past our close frame: discard until the peer's close arrives
        if opcode == wire.OP_TEXT:
            try:
                event = {"type": "websocket.receive", "text": payload.decode()}
            except UnicodeDecodeError:
                raise ProtocolViolation(wire.CLOSE_1007_INVALID_DATA, "invalid UTF-8 in a text message") from None
        else:
            event = {"type": "websocket.receive", "bytes": payload}
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            self.waiter = None
            waiter.set_result(event)
            return
        if self.inbox is None:
            self.inbox = [event]
        else:
            self.inbox.append(event)
        if not self.read_paused:  # the application is behind: stop reading until it catches up
            self.read_paused = True
            self.transport.pause_reading()

    def _close_received(self, payload: bytes) -> None:
        if self.state == CLOSING:  # the peer answered our close: the handshake is complete
            if self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = None
            self.state = CLOSED
            self.transport.close()
            return
        code, reason = wire.parse_close(payload)
        self._disconnected(code, reason)
        self.transport.write(wire.close_frame(code))  # echo the code (RFC 6455 5.5.1)
        self.state = CLOSED
        self.transport.close()

    def _fail(self, code: int, reason: str) -> None:
        """Close at once with ``code`` after a protocol violation (no wait for the peer's answer)."""
        if self.state == OPEN:
            self._disconnected(code, reason)
            self.transport.write(wire.close_frame(code, reason))
        self.state = CLOSED
        self.buf = b""
        self.fragments = None
        self.transport.close()

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
        if state == CLOSED and self.scope is not None and (self.closed_event is None or kind != "websocket.close"):
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
                logger.info('%s - "WebSocket %s" 403', get_client_addr(self.scope), get_path_with_query_string(self.scope))
                self._disconnected(wire.CLOSE_1006_ABNORMAL, "")
                self.state = CLOSED
                self.transport.write(wire.http_response(403, list(self.shared.default_headers)))
                self.transport.close()
            elif kind == "websocket.http.response.start":
                status = message["status"]
                if not 100 <= status < 600:
                    raise RuntimeError("Invalid HTTP status code '%d' in response." % status)
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
                '%s - "WebSocket %s" [accepted]', get_client_addr(self.scope), get_path_with_query_string(self.scope)
            )
        if self.transport.is_closing():
            self.state = CLOSED  # connection_lost follows; sends meanwhile raise ClientDisconnected
            return
        out = [
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-accept: ",
            self.accept,
            b"\r\n",
        ]
        for name, value in self.shared.default_headers:
            out += [name, b": ", value, b"\r\n"]
        for name, value in message.get("headers") or ():
            out += [name, b": ", value, b"\r\n"]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            out += [b"sec-websocket-protocol: ", subprotocol.encode("latin-1"), b"\r\n"]
        out.append(b"\r\n")
        self.transport.write(b"".join(out))
        self.accept = None
        self.state = OPEN
        shared = self.shared
        if shared.ping_interval is not None:
            self.ping_due = shared.loop.time() + shared.ping_interval
            if shared.ticker is None:
                _schedule_keepalive(shared)
        if self.buf:  # frames the client sent before it saw the 101
            data, self.buf = self.buf, b""
            shared.loop.call_soon(self.data_received, data)

    def _response_body(self, message: dict[str, Any]) -> None:
        if message["type"] != "websocket.http.response.body":
            raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{message['type']}'.")
        response = self.response
        assert response is not None
        response[2].append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status, headers, body = response
        self._disconnected(wire.CLOSE_1006_ABNORMAL, "")
        self.state = CLOSED
        self.transport.write(wire.http_response(status, [*self.shared.default_headers, *headers], b"".join(body)))
        self.transport.close()

    def _send_500(self) -> None:
        if self.state != HANDSHAKE or self.response is not None or self.transport.is_closing():
            return
        self.state = CLOSED
        self.transport.write(wire.http_response(500, list(self.shared.default_headers), b"Internal Server Error"))

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

    def direct_writer(self) -> Callable[[bytes], bool] | None:
        """The hub's direct-write hook (``server/connection.py``): ``write_frame``; no extension to apply."""
        return self.write_frame


# -- keepalive: one timer per server, not two per socket -------------------------------------
def _schedule_keepalive(shared: _Shared) -> None:
    interval = shared.ping_interval
    assert interval is not None
    step = min(interval, shared.ping_timeout or interval) / 4
    shared.ticker = shared.loop.call_later(max(step, 0.05), _keepalive, shared)


def _keepalive(shared: _Shared) -> None:
    """Ping sockets whose interval is up; close those that did not answer within the timeout."""
    shared.ticker = None
    now = shared.loop.time()
    interval = shared.ping_interval
    timeout = shared.ping_timeout
    ping = wire.frame(wire.OP_PING, PING_PAYLOAD)
    any_open = False
    for proto in list(shared.connections):
        if type(proto) is not WebSocketProtocol or proto.state != OPEN:
            continue
        any_open = True
        if proto.pinged and timeout is not None and now - proto.pinged > timeout:
            logger.debug("%s - WebSocket keepalive ping timeout", proto._peer())
            proto._fail(wire.CLOSE_1011_INTERNAL_ERROR, "keepalive ping timeout")
        elif now >= proto.ping_due and not proto.transport.is_closing():
            proto.ping_due = now + interval  # type: ignore[operator]
            if not proto.pinged:
                proto.pinged = now
            proto.transport.write(ping)
    if any_open:
        _schedule_keepalive(shared)


# Uvicorn imports the ``--ws`` class when it loads its configuration, before it listens: this is
# its start-up line saying which WebSocket protocol serves (its own say nothing).
logger.info(
    "WebSocket protocol: django_broadcasting.server.front.uvicorn:WebSocketProtocol (no permessage-deflate)"
)
