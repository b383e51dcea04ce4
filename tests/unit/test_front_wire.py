"""The uvicorn front's pure parts: the handshake's checks and answers, frames and close payloads."""

from __future__ import annotations

import pytest

from django_broadcasting.server.front import handshake, wire
from django_broadcasting.server.front.handshake import HandshakeError
from django_broadcasting.server.front.wire import ProtocolViolation

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3


def request(*lines: str, method: str = "GET") -> bytes:
    head = [f"{method} /ws/general?auth_token=x HTTP/1.1", "host: example.com", "upgrade: websocket",
            "connection: Upgrade", *lines]  # fmt: skip
    return "\r\n".join(head).encode()


def test_accept_key_is_rfc_6455s_example():
    assert handshake.accept_key(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_parse_upgrade_splits_what_uvicorn_rebuilt():
    target, headers, accept, subprotocols = handshake.parse_upgrade(
        request(
            f"sec-websocket-key: {KEY.decode()}",
            "sec-websocket-version: 13",
            "sec-websocket-protocol: broadcasting, bearer.abc",
            "x-value: a: b",
        )
    )
    assert target == b"/ws/general?auth_token=x"
    assert accept == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert subprotocols == ["broadcasting", "bearer.abc"]
    assert (b"x-value", b"a: b") in headers and headers[0] == (b"host", b"example.com")


@pytest.mark.parametrize(
    ("lines", "method", "status"),
    [
        (("sec-websocket-version: 13",), "GET", 400),  # no key
        (("sec-websocket-key: c2hvcnQ=", "sec-websocket-version: 13"), "GET", 400),  # 5 bytes
        (
            (
                f"sec-websocket-key: {KEY.decode()}",
                f"sec-websocket-key: {KEY.decode()}",
                "sec-websocket-version: 13",
            ),
            "GET",
            400,
        ),  # fmt: skip
        ((f"sec-websocket-key: {KEY.decode()}", "sec-websocket-version: 8"), "GET", 426),
        ((f"sec-websocket-key: {KEY.decode()}",), "GET", 426),  # no version
        ((f"sec-websocket-key: {KEY.decode()}", "sec-websocket-version: 13"), "POST", 405),
    ],
)
def test_parse_upgrade_refuses_bad_handshakes(lines, method, status):
    with pytest.raises(HandshakeError) as info:
        handshake.parse_upgrade(request(*lines, method=method))
    assert info.value.status == status
    if status == 426:
        assert (b"Sec-WebSocket-Version", b"13") in info.value.headers


def test_switching_protocols_is_one_answer_with_every_header():
    out = handshake.switching_protocols(
        b"ACCEPT", [(b"server", b"uvicorn")], [(b"x-a", b"1")], "broadcasting"
    )
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"sec-websocket-accept: ACCEPT\r\n" in out and b"server: uvicorn\r\n" in out
    assert b"x-a: 1\r\n" in out and out.endswith(b"sec-websocket-protocol: broadcasting\r\n\r\n")


def test_http_response_adds_length_type_and_close():
    out = handshake.http_response(403, [(b"date", b"today")])
    assert out.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"content-length: 0\r\n" in out and b"connection: close\r\n" in out


@pytest.mark.parametrize("n", [0, 125, 126, 65535, 65536])
def test_frame_lengths(n):
    data = wire.frame(wire.OP_TEXT, b"x" * n)
    assert data[0] == 0x81
    header = 2 if n < 126 else 4 if n < 65536 else 10
    assert len(data) == header + n


def test_close_frames_and_their_parsing():
    assert wire.close_frame(1005) == b"\x88\x00"
    assert wire.parse_close(wire.close_frame(4200, "bye")[2:]) == (4200, "bye")
    assert wire.parse_close(b"") == (1005, "")
    for bad, code in ((b"\x03", 1002), (b"\x03\xed", 1002), (b"\x03\xe8\xff", 1007)):
        with pytest.raises(ProtocolViolation) as info:
            wire.parse_close(bad)
        assert info.value.code == code


def test_unmask_round_trips():
    mask = b"\x01\x02\x03\x04"
    masked = wire.unmask(b"hello world", mask)
    assert masked != b"hello world" and wire.unmask(masked, mask) == b"hello world"
