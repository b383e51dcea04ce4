"""A raw Pusher protocol 7 client for tests: frames decoded (``data`` parsed twice) and HMACs made here.

Signatures are computed independently of the code under test (hmac + hashlib), with the app
credentials the test servers get in their environment (``PUSHER_ENV``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import websockets

from tests.integration import wsclient
from tests.integration.wsclient import nothing  # noqa: F401 - the same negative check for both protocols

APP_ID = "123456"
APP_KEY = "test-key"
APP_SECRET = "test-secret-0123456789"
PUSHER_ENV = {"PUSHER_APP_ID": APP_ID, "PUSHER_APP_KEY": APP_KEY, "PUSHER_APP_SECRET": APP_SECRET}


def hmac_hex(text: str, secret: str = APP_SECRET) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def signed_query(
    method: str,
    path: str,
    body: bytes = b"",
    timestamp: int | None = None,
    secret: str = APP_SECRET,
    **params: str,
) -> str:
    """The query string that signs an HTTP API request, computed as the Pusher spec says."""
    query = {
        **params,
        "auth_key": APP_KEY,
        "auth_timestamp": str(timestamp or int(time.time())),
        "auth_version": "1.0",
    }
    if body:
        query["body_md5"] = hashlib.md5(body).hexdigest()
    to_sign = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    query["auth_signature"] = hmac_hex(f"{method}\n{path}\n{to_sign}", secret)
    return "&".join(f"{k}={v}" for k, v in query.items())


def channel_auth(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    text = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return f"{APP_KEY}:{hmac_hex(text)}"


def user_auth(socket_id: str, user_data: str) -> str:
    return f"{APP_KEY}:{hmac_hex(f'{socket_id}::user::{user_data}')}"


def decode(text: str) -> dict[str, Any]:
    frame = json.loads(text)
    if isinstance(frame.get("data"), str):
        frame["raw_data"] = frame["data"]
        try:
            frame["data"] = json.loads(frame["data"])
        except ValueError:
            pass
    return frame


async def recv(ws: Any, timeout: float = 10) -> dict[str, Any]:
    return decode(await asyncio.wait_for(ws.recv(), timeout))


async def expect(ws: Any, event: str, timeout: float = 10, channel: str | None = None) -> dict[str, Any]:
    """Read Pusher frames until ``event`` (on ``channel``) arrives; fail after ``timeout`` seconds."""
    return await wsclient.expect(ws, event, timeout, channel, read=recv)


async def send(ws: Any, event: str, data: Any = None, channel: str | None = None) -> None:
    body: dict[str, Any] = {"event": event, "data": {} if data is None else data}
    if channel is not None:
        body["channel"] = channel
    await ws.send(json.dumps(body))


class PusherSocket:
    """``async with PusherSocket(server) as ps``: connected, ``ps.socket_id`` known."""

    def __init__(
        self, server: Any, key: str = APP_KEY, query: str = "?protocol=7&client=test&version=1.0"
    ) -> None:
        self.url = server.ws_url(f"/app/{key}{query}")
        self.ws: Any = None
        self.socket_id = ""
        self.established: dict[str, Any] = {}

    async def __aenter__(self) -> PusherSocket:
        self.ws = await websockets.connect(self.url, open_timeout=10)
        self.established = await recv(self.ws)
        assert self.established["event"] == "pusher:connection_established", self.established
        self.socket_id = self.established["data"]["socket_id"]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.ws.close()

    async def subscribe(
        self, channel: str, *, auth: str | None = None, channel_data: str | None = None, sign: bool = True
    ) -> dict[str, Any]:
        """Subscribe (signing private-/presence- names unless ``sign=False``); the answer frame."""
        data: dict[str, Any] = {"channel": channel}
        if channel_data is not None:
            data["channel_data"] = channel_data
        if auth is None and sign and channel.startswith(("private-", "presence-")):
            auth = channel_auth(self.socket_id, channel, channel_data)
        if auth is not None:
            data["auth"] = auth
        await send(self.ws, "pusher:subscribe", data)
        while True:
            frame = await recv(self.ws)
            if frame.get("channel") == channel and frame["event"] in (
                "pusher_internal:subscription_succeeded",
                "pusher:subscription_error",
            ):
                return frame

    async def join(self, channel: str, user_id: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
        channel_data = json.dumps({"user_id": user_id, "user_info": info or {}})
        return await self.subscribe(channel, channel_data=channel_data)


async def closed_with(ws: Any, timeout: float = 10) -> tuple[int, list[dict[str, Any]]]:
    """Wait for the server to close ``ws``; the close code and the frames received before it."""
    frames = []
    try:
        while True:
            frames.append(decode(await asyncio.wait_for(ws.recv(), timeout)))
    except websockets.ConnectionClosed as exc:
        return (exc.rcvd.code if exc.rcvd else 1006), frames
