"""The opening handshake (RFC 6455 4.2) and the plain HTTP answers a refused one gets.

No I/O here: ``uvicorn.py`` writes what these functions return.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from http import HTTPStatus
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeError(Exception):
    """The upgrade request is not a valid RFC 6455 opening handshake: answer ``status``."""

    def __init__(self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


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
            426,
            "Unsupported Sec-WebSocket-Version; this server speaks 13.",
            ((b"Sec-WebSocket-Version", b"13"),),
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


def parse_upgrade(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes, list[str]]:
    """Split the upgrade request uvicorn rebuilt; return (target, headers, accept key, subprotocols).

    Uvicorn hands over ``METHOD URL HTTP/1.1`` and one ``name: value`` line per header as httptools
    (or h11) parsed them, names lower-cased: split, never parsed again. Raise ``HandshakeError``
    for what RFC 6455 4.2.1 refuses.
    """
    lines = data.split(b"\r\n")
    try:
        method, target, _version = lines[0].split(b" ", 2)
    except ValueError:
        raise HandshakeError(400, "Invalid WebSocket handshake request.") from None
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
    check_version(version)
    return target, headers, accept_key(check_key(key)), subprotocols


def switching_protocols(
    accept: bytes, default_headers: list[tuple[bytes, bytes]], headers: Any, subprotocol: str | None
) -> bytes:
    """The 101 answer: uvicorn's default headers (date, server), the application's, the subprotocol."""
    out = [
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
        b"sec-websocket-accept: ",
        accept,
        b"\r\n",
    ]
    for name, value in default_headers:
        out += [name, b": ", value, b"\r\n"]
    for name, value in headers or ():
        out += [name, b": ", value, b"\r\n"]
    if subprotocol:
        out += [b"sec-websocket-protocol: ", subprotocol.encode("latin-1"), b"\r\n"]
    out.append(b"\r\n")
    return b"".join(out)
