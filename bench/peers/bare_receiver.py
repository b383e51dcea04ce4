"""Peer (S5): the floor of receiving from Redis at fan-out 1 in Python.

A ``websockets`` server on uvloop with one Redis pub/sub connection read by hiredis in the
socket's own callback. A client connects to ``/<channel>``; the relay subscribes to
``bench-bare.<channel>`` (what ``bench/s5_publisher.py bare`` publishes to), answers ``ready``
once Redis confirmed, and writes every message's payload, as it came, to the channel's sockets
with ``websockets.broadcast()``. No envelope, no ids, no authorization, no history: one wakeup, one
read and one WebSocket write per message, the floor of the receiving server's path.

    python -m bench.peers.bare_receiver <port> <redis port>
"""

from __future__ import annotations

import asyncio
import sys

import hiredis
from websockets.asyncio.server import ServerConnection, broadcast, serve

SOCKETS: dict[bytes, set[ServerConnection]] = {}


class PubSub(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.confirm: dict[bytes, asyncio.Future[None]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if reply[0] == b"message":
                sockets = SOCKETS.get(reply[1])
                if sockets:
                    broadcast(sockets, reply[2].decode())
            elif reply[0] == b"subscribe":
                future = self.confirm.pop(reply[1], None)
                if future is not None and not future.done():
                    future.set_result(None)

    async def subscribe(self, name: bytes) -> None:
        future = self.confirm.setdefault(name, asyncio.get_running_loop().create_future())
        assert self.transport is not None
        self.transport.write(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(name), name))
        await future


async def main(port: int, redis_port: int) -> None:
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(PubSub, "127.0.0.1", redis_port)

    async def handler(ws: ServerConnection) -> None:
        name = b"bench-bare." + ws.request.path.lstrip("/").encode()
        sockets = SOCKETS.setdefault(name, set())
        if not sockets:
            await link.subscribe(name)
        sockets.add(ws)
        try:
            await ws.send("ready")
            await ws.wait_closed()
        finally:
            sockets.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, backlog=4096):
        await loop.create_future()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
