"""A client that stops reading is cut off (4200, reconnect) instead of growing the server's memory.

The client's receive window fills, then the kernel's buffers, then the server's own buffer
for that socket; past ``OUTGOING_BUFFER`` frames' worth the server closes it, and the other
subscribers keep receiving. Under uvicorn a stalled send suspends and ``Connection``'s backlog
bound applies; daphne never suspends a send, so there Twisted's buffer is what is bounded.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
import websockets

from django_broadcasting.http.trigger import apost
from django_broadcasting.messages import Message
from tests.integration.wsclient import connect, expect

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["daphne", "uvicorn", "uvicorn-front"])
async def test_client_that_stops_reading_is_closed_with_4200(server_factory, kind):
    server = server_factory(
        kind, env={"BROADCAST_OUTGOING_BUFFER": "20", "BROADCAST_HISTORY_ENABLED": "false"}
    )
    url = server.url("/api/broadcast/events")
    payload = {"blob": "x" * 60_000}
    # A small receive buffer, set before connecting (Linux may otherwise grow it to tens of MB).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect((server.host, server.port))
    sock.setblocking(False)
    slow = await connect(
        server.ws_url("/ws?channel=firehose"), sock=sock, max_queue=1, max_size=2**20, compression=None
    )
    await expect(slow, "subscribed")
    slow.transport.pause_reading()  # stop reading: the server's writes back up to it
    # No permessage-deflate: repeated bytes would compress to nothing and never back up.
    async with await connect(server.ws_url("/ws?channel=firehose"), max_size=2**20, compression=None) as fast:
        await expect(fast, "subscribed")
        for _ in range(40):  # up to 40 x 15 frames of 60 KB (36 MB) for the slow socket
            await apost(
                [m for _ in range(15) for m in Message.for_channels(["firehose"], "blob", payload)], url=url
            )
            for _ in range(15):
                await expect(fast, "blob")  # the reader keeps up and is never held back
        slow.transport.resume_reading()
        code = None
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 10)
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        except TimeoutError:
            code = "still open"
        # The close frame sits behind the frames already buffered for the client, and autobahn
        # gives up the closing handshake after a while: the client sees 4200 or an abnormal close.
        assert code in (4200, None), code
        assert "closing slow client" in server.log_text()
