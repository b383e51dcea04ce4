"""A tiny WebSocket test client over the real ``websockets`` package, with frame helpers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import websockets

from tests.servers import TEST_JWT_SECRET


def make_token(
    sub: str | int, *, roles=(), ttl: float = 300, secret: str = TEST_JWT_SECRET, **claims: Any
) -> str:
    """Mint a JWT the way an application would (independent of the code under test)."""
    now = int(time.time())
    payload = {
        "sub": str(sub),
        "aud": "websocket",
        "iat": now,
        "exp": now + ttl,
        "roles": list(roles),
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


async def connect(url: str, **kwargs: Any) -> websockets.ClientConnection:
    return await websockets.connect(url, open_timeout=10, **kwargs)


async def recv(ws: Any, timeout: float = 10) -> dict[str, Any]:
    """The next frame, decoded."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def expect(
    ws: Any, event: str, timeout: float = 10, channel: str | None = None, *, read: Any = None
) -> dict[str, Any]:
    """Read frames until one with ``event`` (and ``channel``) arrives; fail on timeout.

    ``read(ws, timeout)`` decodes one frame (``recv`` here; the Pusher client passes its own).
    """
    read = read or recv
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {event!r} frame within {timeout}s; saw {seen}")
        try:
            frame = await read(ws, left)
        except TimeoutError:
            raise AssertionError(f"no {event!r} frame within {timeout}s; saw {seen}") from None
        if frame.get("event") == event and (channel is None or frame.get("channel") == channel):
            return frame
        seen.append(frame)


async def nothing(ws: Any, within: float = 0.5) -> None:
    """Assert that no frame arrives within ``within`` seconds (a negative check, not a readiness wait)."""
    try:
        frame = await asyncio.wait_for(ws.recv(), within)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame: {frame}")


async def subscribe(ws: Any, channel: str, **extra: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"action": "subscribe", "channel": channel, **extra}))
    frame = await recv(ws)
    if frame["event"] == "error":
        return frame
    assert frame["event"] == "subscribed", frame
    return frame


async def closed_with(ws: Any, timeout: float = 10) -> int:
    """Wait for the server to close ``ws``; return the close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else 1006
