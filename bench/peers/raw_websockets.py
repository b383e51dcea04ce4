"""Peer: a raw ``websockets`` server fanning out with ``websockets.broadcast()`` (the Python near-limit).

Subscribers connect to ``/`` and get ``ready`` once they are in the broadcast set; a publisher
connects to ``/pub`` and every text frame it sends is broadcast to all subscribers. No framework,
no channel names, no authorization: the floor a Python fan-out server can reach.

    python -m bench.peers.raw_websockets 8765
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

SUBSCRIBERS: set[ServerConnection] = set()


async def handler(ws: ServerConnection) -> None:
    if ws.request.path == "/pub":
        async for message in ws:
            broadcast(SUBSCRIBERS, message)
        return
    SUBSCRIBERS.add(ws)
    try:
        await ws.send("ready")
        await ws.wait_closed()
    finally:
        SUBSCRIBERS.discard(ws)


async def main(port: int) -> None:
    # compression=None: the same uncompressed frames the other servers send by default.
    async with serve(handler, "127.0.0.1", port, compression=None, backlog=4096):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1])))
