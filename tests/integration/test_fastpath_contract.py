"""Direct-write contract of uvicorn (websockets-sansio, websockets, this project's front): frames written straight to the socket, the ASGI send otherwise, in order either way.

A real uvicorn server runs in the test's event loop with a tiny ASGI app that wraps each accepted
socket in a ``Connection``; a real ``websockets`` client receives. The app's ``send`` is replaced by
a counting wrapper *after* the connection found its direct writer, so the count says which path
each frame took.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
import websockets

from django_broadcasting.server.connection import Connection, Frame, wire_frame
from tests.servers import free_port


class Proto:
    name = "test"


@pytest.fixture
async def server(request: pytest.FixtureRequest):
    impl = request.param
    conns: list[Connection] = []
    calls: list[dict] = []
    opened = asyncio.Event()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        assert scope["type"] == "websocket"
        await receive()
        await send({"type": "websocket.accept"})

        async def on_close(code: int) -> None:
            await conn.close(code)

        conn = Connection(send, "1.1", Proto(), None, buffer_limit=1000, on_close=on_close)

        async def counting_send(message: dict) -> None:
            calls.append(message)
            await send(message)

        conn._send = counting_send
        conns.append(conn)
        opened.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=impl,
        ws_per_message_deflate=True,
        lifespan="off",
        log_level="warning",
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}/", conns, calls, opened
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 10)


def test_wire_frame_lengths():
    assert wire_frame("hi") == b"\x81\x02hi"
    assert wire_frame("é" * 100)[:4] == b"\x81\x7e\x00\xc8"
    big = wire_frame("x" * 70000)
    assert big[:2] == b"\x81\x7f" and int.from_bytes(big[2:10], "big") == 70000


@pytest.mark.parametrize("server", ["websockets-sansio", "websockets"], indirect=True)
@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_frames_arrive_in_order_on_either_path(server, compression):
    url, conns, calls, opened = server
    async with websockets.connect(url, compression=compression) as ws:
        await asyncio.wait_for(opened.wait(), 10)
        conn = conns[0]
        tasks_before = len(asyncio.all_tasks())
        for i in range(200):
            if i % 3 == 0:
                conn.push(f"text-{i}")  # consumer frames: always the ASGI send
            else:
                conn.push_frame(Frame(f"frame-{i}"))
        # Both paths finish inside push: the server's send completed on its first step.
        assert len(asyncio.all_tasks()) == tasks_before and conn.buffered == 0
        received = [await asyncio.wait_for(ws.recv(), 10) for _ in range(200)]
    assert received == [f"{'text' if i % 3 == 0 else 'frame'}-{i}" for i in range(200)]
    asgi_frames = [
        m["text"] for m in calls if m["type"] == "websocket.send" and m["text"].startswith("frame-")
    ]
    if compression is None:
        assert asgi_frames == []  # every broadcast frame went straight to the socket
    else:
        # permessage-deflate negotiated: every frame must be compressed by the server's own send.
        assert len(asgi_frames) == 200 - len(range(0, 200, 3))
    assert conn.frames_out == 200


@pytest.mark.parametrize("server", ["websockets-sansio"], indirect=True)
async def test_closed_socket_takes_no_direct_write(server):
    url, conns, calls, opened = server
    async with websockets.connect(url, compression=None) as ws:
        await asyncio.wait_for(opened.wait(), 10)
        conn = conns[0]
        await conn.close(1000)
        conn.push_frame(Frame("after-close"))  # dropped: the connection is closed
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                assert await asyncio.wait_for(ws.recv(), 5) != "after-close"
    assert all(m.get("text") != "after-close" for m in calls)


@pytest.mark.parametrize("server", ["websockets-sansio"], indirect=True)
async def test_direct_writes_setting_off_sends_everything_through_asgi(server, settings):
    settings.BROADCASTING = {"DIRECT_WRITES": False}
    url, conns, calls, opened = server
    async with websockets.connect(url, compression=None) as ws:
        await asyncio.wait_for(opened.wait(), 10)
        conn = conns[0]
        assert conn._write is None
        for i in range(20):
            conn.push_frame(Frame(f"frame-{i}"))
        assert [await asyncio.wait_for(ws.recv(), 10) for _ in range(20)] == [f"frame-{i}" for i in range(20)]
    assert [m["text"] for m in calls if m["type"] == "websocket.send"] == [f"frame-{i}" for i in range(20)]


FRONT = "django_broadcasting.server.front.uvicorn:WebSocketProtocol"


@pytest.mark.parametrize("server", [FRONT], indirect=True)
@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_uvicorn_front_offers_its_own_direct_write(server, compression):
    """This project's uvicorn protocol: the writer is its ``direct_writer()`` hook; a deflate offer
    is declined, so every broadcast frame goes straight to the socket either way."""
    url, conns, calls, opened = server
    async with websockets.connect(url, compression=compression) as ws:
        await asyncio.wait_for(opened.wait(), 10)
        conn = conns[0]
        assert getattr(conn._write, "__name__", "") == "write_frame"
        for i in range(50):
            conn.push_frame(Frame(f"frame-{i}"))
        assert [await asyncio.wait_for(ws.recv(), 10) for _ in range(50)] == [f"frame-{i}" for i in range(50)]
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        await conn.close(1000)
        conn.push_frame(Frame("after-close"))
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                assert await asyncio.wait_for(ws.recv(), 5) != "after-close"
    assert [m for m in calls if m["type"] == "websocket.send"] == []


@pytest.mark.parametrize("server", ["websockets-sansio"], indirect=True)
async def test_an_untested_server_version_gets_the_asgi_send(server, monkeypatch, caplog):
    """Another version than the contract test covers: no private state is read, every frame is sent."""
    from django_broadcasting.server import fastpath

    monkeypatch.setitem(fastpath.TESTED, "uvicorn-websockets-sansio", {"uvicorn": ("0.1.",)})
    fastpath.path_for.cache_clear()
    monkeypatch.setattr(fastpath, "_reported", set())
    url, conns, calls, opened = server
    try:
        with caplog.at_level("INFO", logger="django_broadcasting.server"):
            async with websockets.connect(url, compression=None) as ws:
                await asyncio.wait_for(opened.wait(), 10)
                conn = conns[0]
                assert conn._write is None
                conn.push_frame(Frame("through-asgi"))
                assert await asyncio.wait_for(ws.recv(), 10) == "through-asgi"
    finally:
        fastpath.path_for.cache_clear()
    assert [m["text"] for m in calls if m["type"] == "websocket.send"] == ["through-asgi"]
    assert "fan-out on uvicorn-websockets-sansio uses the ASGI send: uvicorn" in caplog.text
    assert "has no contract test (tested: 0.1.*)" in caplog.text


def test_the_installed_servers_are_the_tested_ones():
    # If this fails after an upgrade, run the contract tests against the new version and add it to
    # fastpath.TESTED: until then that server gets the ASGI send (correct, slower).
    from django_broadcasting.server import fastpath

    for kind in fastpath.TESTED:
        enabled, why = fastpath.path_for(kind)
        assert enabled, why


# -- the other server internals in fastpath/: gated by the same TESTED table ---------------------


@pytest.fixture
def untested(monkeypatch):
    """Make ``kind`` an untested version for the rest of the test."""
    from django_broadcasting.server import fastpath

    def apply(kind: str) -> None:
        monkeypatch.setitem(fastpath.TESTED, kind, {next(iter(fastpath.TESTED[kind])): ("0.1.",)})
        fastpath.path_for.cache_clear()

    yield apply
    fastpath.path_for.cache_clear()


@pytest.mark.parametrize("tested", [True, False], ids=["tested", "untested"])
def test_daphne_close_patch_follows_the_gate(tested, monkeypatch, untested):
    """daphne's ``serverClose`` is patched (1012 reaches the client) only for a tested version."""
    from daphne.ws_protocol import WebSocketProtocol

    from django_broadcasting.server.fastpath import daphne as fast_daphne

    original = WebSocketProtocol.serverClose
    monkeypatch.setattr(WebSocketProtocol, "serverClose", original)  # restored afterwards
    monkeypatch.setattr(fast_daphne, "_patched", False)
    if not tested:
        untested("daphne")
    assert fast_daphne.allow_standard_close_codes() is tested
    assert (WebSocketProtocol.serverClose is not original) is tested

    sent: list[tuple] = []

    class Proto:
        STATE_OPEN = 1
        state = 1

        def sendCloseFrame(self, code=None, isReply=False):  # noqa: N802 - autobahn's name
            sent.append((code, isReply))

    if tested:
        WebSocketProtocol.serverClose(Proto(), 1012)
        assert sent == [(1012, False)]


@pytest.mark.parametrize("tested", [True, False], ids=["tested", "untested"])
async def test_uvicorn_signal_wrap_follows_the_gate(tested, untested):
    """Under a tested uvicorn, SIGTERM runs the hook first, then the previous handler; otherwise nothing is wrapped."""
    import os
    import signal

    from django_broadcasting.server.fastpath.uvicorn import wrap_signal_handlers

    if not tested:
        untested("uvicorn")
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous_called = asyncio.Event()
    hooked = asyncio.Event()
    loop = asyncio.get_running_loop()

    def previous(signum, frame):
        loop.call_soon_threadsafe(previous_called.set)

    async def on_signal():
        hooked.set()

    try:
        for sig in saved:
            signal.signal(sig, previous)
        assert wrap_signal_handlers(on_signal) is tested
        assert (signal.getsignal(signal.SIGTERM) is not previous) is tested
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(previous_called.wait(), 5)
        if tested:
            await asyncio.wait_for(hooked.wait(), 5)
        else:
            await asyncio.sleep(0)
            assert not hooked.is_set()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
