"""Broadcast bursts reach every subscriber complete and in order, on every server and both write paths.

Clients without compression get frames written straight to the socket (daphne, uvicorn's
``websockets`` and ``websockets-sansio``); clients that negotiate permessage-deflate get them
through the server's ASGI send. One trigger request carries 300 messages, so the hub delivers them
back to back.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from django_broadcasting.http.trigger import sign
from tests.integration.wsclient import connect, expect

pytestmark = pytest.mark.integration

BURST = 300


@pytest.mark.parametrize(
    "kind, args",
    [
        ("daphne", ()),
        ("uvicorn", ()),
        ("uvicorn", ("--ws", "websockets-sansio")),
    ],
    ids=["daphne", "uvicorn-websockets", "uvicorn-sansio"],
)
async def test_burst_arrives_complete_and_in_order(server_factory, kind, args):
    server = server_factory(kind, args=args)
    url = server.ws_url("/ws?channel=burst")
    async with await connect(url, compression=None) as plain, await connect(url) as deflate:
        for ws in (plain, deflate):
            await expect(ws, "subscribed")
        messages = [
            {"channel": "burst", "event": "tick", "data_json": json.dumps({"i": i})} for i in range(BURST)
        ]
        body = json.dumps({"messages": messages}).encode()
        async with httpx.AsyncClient() as client:
            response = await client.post(
                server.url("/api/broadcast/events"),
                content=body,
                headers={"Content-Type": "application/json", **sign(body)},
            )
        assert response.status_code == 202, response.text

        async def ticks(ws) -> list[int]:
            seen = []
            while len(seen) < BURST:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["event"] == "tick":
                    seen.append(frame["data"]["i"])
            return seen

        assert await ticks(plain) == list(range(BURST))
        assert await ticks(deflate) == list(range(BURST))
        # The contract: this server's installed versions are the tested ones, so the plain client's
        # frames went straight to the socket (and the server said so once, at its first socket).
        expected = "fan-out on daphne" if kind == "daphne" else "fan-out on uvicorn-websockets-sansio"
        log = server.log_text()
        assert f"{expected} uses direct writes: contract-tested" in log, server.log_tail()
