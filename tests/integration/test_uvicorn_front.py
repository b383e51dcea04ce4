"""This project's uvicorn WebSocket protocol (``server/front/uvicorn.py``) at the RFC 6455 edges.

Raw TCP sockets against a real uvicorn process running
``--ws django_broadcasting.server.front.uvicorn:WebSocketProtocol``: the bytes a broken or hostile
client sends, and the close code or HTTP status it must get. The protocol suites
(test_native_protocol.py, test_pusher_protocol.py, ...) run on it too, as ``uvicorn-front``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct

import pytest
import websockets

from tests.integration.wsclient import connect, make_token, recv
from tests.servers import FRONT_WS, ServerProcess

pytestmark = pytest.mark.integration

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


@pytest.fixture(scope="module")
def server(uvicorn_front_server: ServerProcess) -> ServerProcess:
    return uvicorn_front_server


# -- a raw client ------------------------------------------------------------------------------
def masked(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    """One client frame, masked unless told otherwise."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Raw:
    """A WebSocket client written out by hand, for the frames a library would never send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def handshake(
        cls, server: ServerProcess, path: str = "/ws", *, version: str = "13", key: str | None = None,
        extra: str = "",
    ) -> tuple[Raw, int, bytes]:  # fmt: skip
        reader, writer = await asyncio.open_connection(server.host, server.port)
        key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"
        )
        writer.write(request.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        status = int(head.split(b" ", 2)[1])
        return cls(reader, writer), status, head

    async def open(self) -> None:
        """Read the ``connected`` frame the native protocol sends first."""
        opcode, payload = await self.frame()
        assert opcode == OP_TEXT and json.loads(payload)["event"] == "connected"

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def frame(self, timeout: float = 10) -> tuple[int, bytes]:
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        assert not head[1] & 0x80, "server frames are never masked"
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return head[0] & 0x0F, await self.reader.readexactly(n)

    async def close_code(self, timeout: float = 10) -> tuple[int, str]:
        """Skip frames until the server's close frame; return its code and reason."""
        while True:
            opcode, payload = await self.frame(timeout)
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    async def eof(self, timeout: float = 10) -> bytes:
        """Read until the server closes the TCP connection; return what came before (an HTTP body)."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    def close(self) -> None:
        self.writer.close()


# -- handshake -----------------------------------------------------------------------------------
async def test_handshake_answers_101_with_the_accept_key(server):
    key = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example
    raw, status, head = await Raw.handshake(server, "/ws/general", key=key)
    try:
        assert status == 101
        assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head
        assert b"sec-websocket-extensions" not in head.lower()  # no permessage-deflate, ever
        await raw.open()
        opcode, payload = await raw.frame()
        assert json.loads(payload)["event"] == "subscribed"
    finally:
        raw.close()


async def test_unsupported_version_is_426_naming_13(server):
    raw, status, head = await Raw.handshake(server, version="8")
    assert status == 426
    assert b"sec-websocket-version: 13" in head.lower()
    assert b"13" in await raw.eof()


@pytest.mark.parametrize("key", ["", "not base64!", base64.b64encode(b"short").decode()])
async def test_bad_key_is_400(server, key):
    raw, status, _ = await Raw.handshake(server, key=key)
    assert status == 400
    assert b"Sec-WebSocket-Key" in await raw.eof()


async def test_denied_handshake_is_403(server):
    raw, status, _ = await Raw.handshake(server, "/ws/private-orders.1")  # a private channel, no token
    assert status == 403
    assert await raw.eof() == b""


async def test_subprotocol_token_is_accepted_with_the_subprotocol(server):
    token = make_token(7)
    async with await connect(
        server.ws_url("/ws/user.7"), subprotocols=["broadcasting", f"bearer.{token}"]
    ) as ws:
        assert ws.subprotocol == "broadcasting"
        assert (await recv(ws))["event"] == "connected"
        assert (await recv(ws))["data"]["channel"] == "user.7"


# -- frames --------------------------------------------------------------------------------------
async def test_unmasked_client_frame_closes_with_1002(server):
    raw, status, _ = await Raw.handshake(server)
    await raw.open()
    raw.send(masked(OP_TEXT, b'{"action":"ping"}', mask=False))
    code, _ = await raw.close_code()
    assert code == 1002
    assert await raw.eof() == b""


@pytest.mark.parametrize(
    "frame",
    [
        masked(OP_TEXT, b"{}", rsv=0x40),  # a reserved bit without an extension
        masked(OP_CONT, b"{}"),  # a continuation with no message begun
        masked(OP_PING, b"x" * 126),  # a control frame over 125 bytes
        masked(OP_PING, b"x", fin=False),  # a fragmented control frame
        masked(0x3, b"x"),  # a reserved opcode
        masked(OP_CLOSE, struct.pack("!H", 1005)),  # a close code no peer may send
    ],
    ids=["rsv", "stray-continuation", "long-ping", "fragmented-ping", "opcode-3", "close-1005"],
)
async def test_protocol_violations_close_with_1002(server, frame):
    raw, _, _ = await Raw.handshake(server)
    await raw.open()
    raw.send(frame)
    code, _ = await raw.close_code()
    assert code == 1002
    assert await raw.eof() == b""


async def test_invalid_utf8_text_closes_with_1007(server):
    raw, _, _ = await Raw.handshake(server)
    await raw.open()
    raw.send(masked(OP_TEXT, b'{"action":"\xff\xfe"}'))
    code, _ = await raw.close_code()
    assert code == 1007
    assert await raw.eof() == b""


async def test_oversize_message_closes_with_1009_on_its_header(server):
    raw, _, _ = await Raw.handshake(server)
    await raw.open()
    # Only the header of a 1 MiB frame (past 4 x MAX_FRAME_SIZE): refused before any payload.
    raw.send(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", 1 << 20) + os.urandom(4))
    code, reason = await raw.close_code()
    assert code == 1009 and "maximum size" in reason
    assert await raw.eof() == b""


async def test_oversize_fragmented_message_closes_with_1009(server):
    raw, _, _ = await Raw.handshake(server)
    await raw.open()
    raw.send(masked(OP_TEXT, b"x" * 40_000, fin=False))
    raw.send(masked(OP_CONT, b"x" * 40_000))  # 80,000 bytes in all, past 65,536
    code, _ = await raw.close_code()
    assert code == 1009
    assert await raw.eof() == b""


async def test_fragmented_message_is_reassembled(server):
    raw, _, _ = await Raw.handshake(server)
    try:
        await raw.open()
        text = json.dumps({"action": "ping", "data": {"parts": "three é"}}).encode()
        a, b = len(text) // 3, 2 * len(text) // 3
        raw.send(masked(OP_TEXT, text[:a], fin=False))
        raw.send(masked(OP_PING, b"between"))  # control frames may come between fragments
        raw.send(masked(OP_CONT, text[a:b], fin=False))
        raw.send(masked(OP_CONT, text[b:]))
        assert await raw.frame() == (OP_PONG, b"between")
        opcode, payload = await raw.frame()
        frame = json.loads(payload)
        assert opcode == OP_TEXT and frame["event"] == "pong" and frame["data"] == {"parts": "three é"}
    finally:
        raw.close()


async def test_frames_split_across_reads_are_parsed(server):
    raw, _, _ = await Raw.handshake(server)
    try:
        await raw.open()
        data = masked(OP_TEXT, json.dumps({"action": "ping", "data": {"n": 1}}).encode())
        data += masked(OP_TEXT, json.dumps({"action": "ping", "data": {"n": 2}}).encode())
        for i in range(len(data)):  # one byte at a time
            raw.send(data[i : i + 1])
            await raw.writer.drain()
        assert json.loads((await raw.frame())[1])["data"] == {"n": 1}
        assert json.loads((await raw.frame())[1])["data"] == {"n": 2}
    finally:
        raw.close()


async def test_ping_is_answered_with_a_pong_of_the_same_payload(server):
    raw, _, _ = await Raw.handshake(server)
    try:
        await raw.open()
        raw.send(masked(OP_PING, b"are you there"))
        assert await raw.frame() == (OP_PONG, b"are you there")
    finally:
        raw.close()


async def test_close_handshake_is_echoed_then_the_server_hangs_up(server):
    raw, _, _ = await Raw.handshake(server)
    await raw.open()
    raw.send(masked(OP_CLOSE, struct.pack("!H", 1000) + b"bye"))
    code, _ = await raw.close_code()
    assert code == 1000
    assert await raw.eof() == b""


async def test_application_close_waits_for_the_client_answer(server_factory):
    srv = server_factory("uvicorn-front", env={"BROADCAST_MAX_CONNECTIONS": "1"})
    first, _, _ = await Raw.handshake(srv)
    second, status, _ = await Raw.handshake(srv)
    try:
        await first.open()
        assert status == 101
        code, _ = await second.close_code()  # over capacity: the application closes with 4100
        assert code == 4100
        second.send(masked(OP_CLOSE, struct.pack("!H", 4100)))  # our answer completes the handshake
        assert await second.eof() == b""
    finally:
        first.close()
        second.close()


async def test_client_gone_mid_frame_leaves_the_server_serving(server):
    raw, _, _ = await Raw.handshake(server, "/ws/general")
    await raw.open()
    await raw.frame()  # subscribed
    frame = masked(OP_TEXT, json.dumps({"action": "ping"}).encode())
    raw.send(frame[: len(frame) // 2])  # half a frame, then the client vanishes
    await raw.writer.drain()
    raw.writer.transport.abort()
    async with await connect(server.ws_url("/ws/general")) as ws:
        assert (await recv(ws))["event"] == "connected"
        assert (await recv(ws))["event"] == "subscribed"
    assert "Traceback" not in server.log_text()


# -- keepalive ------------------------------------------------------------------------------------
async def test_keepalive_pings_and_closes_a_silent_client_with_1011(server_factory):
    srv = server_factory("uvicorn-front", args=["--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5"])
    silent, _, _ = await Raw.handshake(srv)
    answering, _, _ = await Raw.handshake(srv)
    try:
        await silent.open()
        await answering.open()
        opcode, payload = await answering.frame(timeout=5)
        assert opcode == OP_PING
        answering.send(masked(OP_PONG, payload))
        code, reason = await silent.close_code(timeout=5)  # pings it gets go unanswered
        assert code == 1011 and "keepalive" in reason
        for _ in range(2):  # the answering client stays, and keeps being pinged
            opcode, payload = await answering.frame(timeout=5)
            assert opcode == OP_PING
            answering.send(masked(OP_PONG, payload))
    finally:
        silent.close()
        answering.close()


async def test_server_process_says_which_protocol_is_active(server):
    assert FRONT_WS.split(":")[0] in server.log_text()


async def test_works_behind_uvicorns_h11_parser_too(server_factory):
    srv = server_factory("uvicorn-front", args=["--http", "h11"])
    async with await connect(srv.ws_url("/ws/general?x=%C3%A9")) as ws:
        assert (await recv(ws))["event"] == "connected"
        assert (await recv(ws))["data"]["channel"] == "general"
        await ws.send(json.dumps({"action": "ping", "data": {"via": "h11"}}))
        assert (await recv(ws))["data"] == {"via": "h11"}


# -- the ASGI contract, with a bare application -----------------------------------------------------
@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> ServerProcess:
    srv = ServerProcess(
        "uvicorn-front",
        app="tests.integration.front_app:app",
        args=["--root-path", "/rt"],
        log_path=tmp_path_factory.mktemp("front-bare") / "uvicorn.log",
    ).start()
    yield srv
    srv.stop()


async def test_scope_accept_headers_and_subprotocol(bare):
    async with await connect(bare.ws_url("/scope?a=%20b"), subprotocols=["chat.v2", "chat.v1"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response.headers["x-front"] == "yes"
        scope = json.loads(await ws.recv())
    assert scope["type"] == "websocket" and scope["scheme"] == "ws" and scope["http_version"] == "1.1"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["root_path"] == "/rt" and scope["path"] == "/rt/scope" and scope["raw_path"] == "/rt/scope"
    assert scope["query_string"] == "a=%20b"
    assert scope["subprotocols"] == ["chat.v2", "chat.v1"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", bare.port]
    assert "sec-websocket-key" in scope["header_names"] and "host" in scope["header_names"]
    assert scope["extensions"] == {"websocket.http.response": {}}


async def test_text_and_bytes_round_trip(bare):
    async with await connect(bare.ws_url("/echo"), max_size=2**20) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01binary")
        assert await ws.recv() == b"\x00\x01binary"
        big = "x" * 60_000  # under 4 x MAX_FRAME_SIZE bytes: accepted, 2-byte length on the way back
        await ws.send(big)
        assert await ws.recv() == big


async def test_application_close_carries_code_and_reason(bare):
    async with await connect(bare.ws_url("/close")) as ws:
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd.code == 4321 and info.value.rcvd.reason == "bye"


async def test_http_response_extension_denies_with_the_applications_answer(bare):
    raw, status, head = await Raw.handshake(bare, "/deny")
    assert status == 401 and b"x-why: no token" in head
    assert await raw.eof() == b"sign in first"


async def test_exception_before_accept_is_500_and_logged(bare):
    raw, status, _ = await Raw.handshake(bare, "/boom")
    assert status == 500
    assert await raw.eof() == b"Internal Server Error"
    assert "the application failed before accepting" in bare.log_text()
