"""RFC 6455 frames: opcodes, close codes and payloads, server frames out, client payloads unmasked.

No I/O and no state here: ``uvicorn.py`` owns the socket; ``handshake.py`` has the HTTP side.
"""

from __future__ import annotations

try:  # the C helper that ships with ``websockets`` (uvicorn[standard] brings it)
    from websockets.speedups import apply_mask as _c_apply_mask
except ImportError:  # pragma: no cover - pure-Python fallback
    _c_apply_mask = None

# Opcodes
OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

# Close codes the protocol layer itself sends.
CLOSE_1002_PROTOCOL_ERROR = 1002
CLOSE_1005_NO_STATUS = 1005
CLOSE_1006_ABNORMAL = 1006
CLOSE_1007_INVALID_DATA = 1007
CLOSE_1009_TOO_BIG = 1009
CLOSE_1011_INTERNAL_ERROR = 1011
CLOSE_1012_SERVICE_RESTART = 1012


class ProtocolViolation(Exception):
    """The client broke RFC 6455 (or a limit): close the socket with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server-to-client frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with ``code`` (1005 means "no status": an empty payload) and ``reason``."""
    if code == CLOSE_1005_NO_STATUS:
        return frame(OP_CLOSE, b"")
    data = reason.encode()[:123]  # a control frame's payload is at most 125 bytes
    return frame(OP_CLOSE, code.to_bytes(2, "big") + data)


def valid_close_code(code: int) -> bool:
    """Codes a peer may send (RFC 6455 7.4; 1004-1006 and 1015 are reserved, 1012-1014 IANA)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def parse_close(payload: bytes) -> tuple[int, str]:
    """Return (code, reason) of a received close frame, or raise ``ProtocolViolation``."""
    if not payload:
        return CLOSE_1005_NO_STATUS, ""
    if len(payload) == 1:
        raise ProtocolViolation(CLOSE_1002_PROTOCOL_ERROR, "close frame too short")
    code = int.from_bytes(payload[:2], "big")
    if not valid_close_code(code):
        raise ProtocolViolation(CLOSE_1002_PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode()
    except UnicodeDecodeError:
        raise ProtocolViolation(CLOSE_1007_INVALID_DATA, "invalid UTF-8 in close reason") from None
    return code, reason


def unmask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte client ``mask``."""
    if _c_apply_mask is not None:
        return _c_apply_mask(data, mask)
    n = len(data)  # pragma: no cover - the fallback: one big-integer XOR
    if not n:
        return b""
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(data, "little") ^ key).to_bytes(n, "little")
