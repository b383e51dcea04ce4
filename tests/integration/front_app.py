"""A bare ASGI application for the uvicorn front's ASGI contract tests (test_uvicorn_front.py).

Paths: ``/scope`` accepts (with a header and the first offered subprotocol) and sends the scope
back as JSON; ``/echo`` echoes text and bytes until the client closes, then sends nothing;
``/close`` accepts and closes with 4321 "bye"; ``/deny`` answers 401 through the
``websocket.http.response`` extension; ``/boom`` raises before accepting (HTTP 500).
"""

from __future__ import annotations

import json
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"].removeprefix(scope["root_path"])
    if path == "/deny":
        await send(
            {"type": "websocket.http.response.start", "status": 401, "headers": [(b"x-why", b"no token")]}
        )
        await send({"type": "websocket.http.response.body", "body": b"sign in ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"first"})
        return
    if path == "/boom":
        raise RuntimeError("the application failed before accepting")
    offered = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": offered[0] if offered else None,
            "headers": [(b"x-front", b"yes")],
        }
    )
    if path == "/scope":
        shown = {k: v for k, v in scope.items() if k not in ("headers", "state", "raw_path", "query_string")}
        shown.update(
            raw_path=scope["raw_path"].decode(),
            query_string=scope["query_string"].decode(),
            header_names=[name.decode() for name, _ in scope["headers"]],
        )
        await send({"type": "websocket.send", "text": json.dumps(shown)})
    elif path == "/close":
        await send({"type": "websocket.close", "code": 4321, "reason": "bye"})
        assert (await receive())["type"] == "websocket.disconnect"
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})
