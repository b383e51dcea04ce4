"""The signed HTTP trigger: accepted when signed and fresh; refused, changing nothing, otherwise."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from django_broadcasting.http.trigger import sign
from tests.integration.wsclient import connect, expect, nothing

pytestmark = pytest.mark.integration


def body(event="triggered", channel="general", **extra):
    return json.dumps({"channel": channel, "event": event, "data": {"ok": True}, **extra}).encode()


async def post(server, payload: bytes, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            server.url("/api/broadcast/events"),
            content=payload,
            headers={"Content-Type": "application/json", **headers},
        )


async def test_signed_request_is_published(asgi_server):
    async with await connect(asgi_server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        payload = body()
        response = await post(asgi_server, payload, sign(payload))
        assert response.status_code == 202, response.text
        answer = response.json()
        assert (answer["ok"], answer["messages"]) == (True, 1)
        assert answer["server"]["pid"] == asgi_server.pid  # who accepted it (see test_discovery.py)
        assert (await expect(ws, "triggered"))["data"] == {"ok": True}


async def test_private_prefix_reaches_the_canonical_channel(asgi_server):
    from tests.integration.wsclient import make_token

    async with await connect(asgi_server.ws_url(f"/ws?channel=user.5&auth_token={make_token(5)}")) as ws:
        await expect(ws, "subscribed")
        payload = body(channel="private-user.5")
        assert (await post(asgi_server, payload, sign(payload))).status_code == 202
        assert (await expect(ws, "triggered"))["channel"] == "user.5"


@pytest.mark.parametrize(
    "case, status",
    [
        ("unsigned", 401),
        ("bad signature", 403),
        ("stale", 403),
        ("tampered", 403),
        ("oversized", 413),
        ("invalid channel", 400),
        ("not json", 400),
    ],
)
async def test_bad_requests_are_refused_and_change_nothing(asgi_server, case, status):
    payload = body(event=f"must-not-arrive-{case.replace(' ', '-')}")
    headers = sign(payload)
    if case == "unsigned":
        headers = {}
    elif case == "bad signature":
        headers["X-Broadcast-Signature"] = "sha256=" + "0" * 64
    elif case == "stale":
        headers = sign(payload, int(time.time()) - 3600)
    elif case == "tampered":
        payload = payload.replace(b'"ok": true', b'"ok": false')
    elif case == "oversized":
        payload = body(padding="x" * (2 * 1024 * 1024))
        headers = sign(payload)
    elif case == "invalid channel":
        payload = body(channel="bad channel!")
        headers = sign(payload)
    elif case == "not json":
        payload = b"{nope"
        headers = sign(payload)
    async with await connect(asgi_server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        response = await post(asgi_server, payload, headers)
        assert response.status_code == status, response.text
        assert response.json()["error"]["message"]
        await nothing(ws)


async def test_an_encrypted_channel_without_a_master_key_is_a_400(asgi_server):
    payload = body(channel="private-encrypted-user.5")
    response = await post(asgi_server, payload, sign(payload))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "encryption_not_configured"
    assert "PUSHER_ENCRYPTION_MASTER_KEY_BASE64" in error["message"]
