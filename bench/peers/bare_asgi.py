"""Limit: a bare ASGI app that reads a JSON POST body and answers 200 (S5's cost of one request).

No framework, no routing, no signature check: it reads the whole body, decodes it with
``json.loads`` and answers ``200 {}`` with a ``Content-Length``. Run on the same uvicorn, with the
same options, as this project's server, and sent the same requests by the same client: the floor
an HTTP publish request can cost in a Python ASGI process.

    uvicorn bench.peers.bare_asgi:app --port 8766
"""

from __future__ import annotations

import json
from typing import Any

HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    json.loads(body or b"{}")
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b"{}"})
