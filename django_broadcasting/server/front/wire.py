"""RFC 6455 on the wire: the opening handshake's checks and answers, frames out, close payloads.

No I/O and no state here: ``uvicorn.py`` owns the socket. Everything is plain bytes so the hot
paths (a 101 answer, a text frame) are one join and one ``transport.write``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from http import HTTPStatus

try:  # the C helper that ships with ``websockets`` (uvicorn[standard] brings it)
    from websockets.speedups import apply_mask as _c_apply_mask
except ImportError:  # pragma: no cover - pure-Python fallback
    _c_apply_mask = None

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

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


class HandshakeError(Exception):
    """The upgrade request is not a valid RFC 6455 opening handshake: answer ``status``."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class ProtocolViolation(Exception):
    """The client broke RFC 6455 (or a limit): close the socket with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(key: bytes) -> bytes:
    """Return ``Sec-WebSocket-Accept`` for the client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def check_key(key: bytes | None) -> bytes:
    """Return the key if it is base64 of 16 bytes (RFC 6455 4.2.1), else raise ``HandshakeError``."""
    if key is None:
        raise HandshakeError(400, "Missing Sec-WebSocket-Key header.")
    key = key.strip()
    try:
        raw = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "Invalid Sec-WebSocket-Key header.")
    return key


def check_version(version: bytes | None) -> None:
    """Accept version 13 only; anything else is 426 naming the version this server speaks."""
    if version is None or version.strip() != b"13":
        raise HandshakeError(
            426, "Unsupported Sec-WebSocket-Version; this server speaks 13.", ((b"Sec-WebSocket-Version", b"13"),)
        )


def status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase.encode("latin-1"))


def http_response(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes = b"",
    *,
    content_type: bytes = b"text/plain; charset=utf-8",
) -> bytes:
    """An HTTP/1.1 answer that ends the connection (``Connection: close``, a ``Content-Length``)."""
    out = [status_line(status)]
    names = set()
    for name, value in headers:
        names.add(name.lower())
        out += [name, b": ", value, b"\r\n"]
    if b"content-type" not in names:
        out += [b"content-type: ", content_type, b"\r\n"]
    if b"content-length" not in names:
        out += [b"content-length: ", str(len(body)).encode("ascii"), b"\r\n"]
    if b"connection" not in names:
        out.append(b"connection: close\r\n")
    out += [b"\r\n", body]
    return b"".join(out)


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
