"""Client frames in: RFC 6455 parsing, reassembly and the checks a server owes its peers.

``FrameReader`` is the reading half of ``uvicorn.WebSocketProtocol`` (a mixin with no state of
its own): it splits what ``data_received`` got into frames, unmasks them, reassembles
fragmented messages, answers pings and the close handshake, and turns every violation into a
``ProtocolViolation`` with its close code (1002, 1007 bad UTF-8, 1009 over ``max_size`` on the
frame header, before the payload is buffered).
"""

from __future__ import annotations

from typing import Any

from . import wire
from .wire import ProtocolViolation

# Socket states
HANDSHAKE, OPEN, CLOSING, CLOSED = 0, 1, 2, 3


class FrameReader:
    """Frame parsing for a protocol with ``transport``, ``state``, ``shared`` and the fields below."""

    __slots__ = ()
    # Provided by the protocol class (slots there):
    transport: Any
    shared: Any
    state: int
    buf: bytes
    fragments: list[bytes] | None
    frag_opcode: int
    frag_size: int
    inbox: list[dict[str, Any]] | None
    waiter: Any
    read_paused: bool
    close_timer: Any

    def _disconnected(self, code: int, reason: str) -> None:  # pragma: no cover - the protocol's
        raise NotImplementedError

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
                    raise ProtocolViolation(
                        wire.CLOSE_1002_PROTOCOL_ERROR, "fragmented or long control frame"
                    )
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
                raise ProtocolViolation(
                    wire.CLOSE_1007_INVALID_DATA, "invalid UTF-8 in a text message"
                ) from None
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
