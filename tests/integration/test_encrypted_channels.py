"""End-to-end encrypted channels on real daphne and uvicorn processes, with the PyPI ``pusher`` SDK.

The SDK seals, the server relays ciphertext, and a raw Pusher client opens it with the key the
server's ``/broadcasting/auth`` handed out; this project's ``pusher`` driver seals the same way.
(tests/js/encrypted.test.mjs does the same with pusher-js and Laravel Echo.)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os

import httpx
import pusher
import pytest
from django.test import override_settings
from nacl.secret import SecretBox

from tests.integration import wsclient
from tests.integration.pusher_client import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    PUSHER_ENV,
    PusherSocket,
    expect,
    send,
    signed_query,
)

pytestmark = pytest.mark.integration

MASTER_KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(params=["daphne", "uvicorn"], scope="module")
def server(request, migrated_db_path, tmp_path_factory):
    from tests.servers import ServerProcess

    srv = ServerProcess(
        request.param,
        env={
            "DATABASE_PATH": str(migrated_db_path),
            **PUSHER_ENV,
            "PUSHER_ENCRYPTION_MASTER_KEY_BASE64": MASTER_KEY,
        },
        log_path=tmp_path_factory.mktemp("encrypted") / f"{request.param}.log",
    ).start()
    yield srv
    srv.stop()
    if request.session.testsfailed:
        print(srv.log_tail(100))


def sdk(server) -> pusher.Pusher:
    return pusher.Pusher(
        app_id=APP_ID,
        key=APP_KEY,
        secret=APP_SECRET,
        host="127.0.0.1",
        port=server.port,
        ssl=False,
        encryption_master_key_base64=MASTER_KEY,
    )


async def authorize(server, socket_id: str, channel: str, user: str) -> dict:
    """Ask the server's /broadcasting/auth, as pusher-js does (form body, Bearer token)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            server.url("/broadcasting/auth"),
            data={"socket_id": socket_id, "channel_name": channel},
            headers={"Authorization": f"Bearer {wsclient.make_token(user)}"},
        )
    assert response.status_code == 200, response.text
    return response.json()


def open_box(shared_secret_b64: str, data: dict) -> dict:
    box = SecretBox(base64.b64decode(shared_secret_b64))
    return json.loads(box.decrypt(base64.b64decode(data["ciphertext"]), base64.b64decode(data["nonce"])))


async def test_sdk_sealed_events_are_relayed_as_ciphertext_and_open_with_the_auth_shared_secret(server):
    channel = "private-encrypted-user.5"
    async with PusherSocket(server) as ps:
        answer = await authorize(server, ps.socket_id, channel, "5")
        expected = hashlib.sha256(channel.encode() + base64.b64decode(MASTER_KEY)).digest()
        assert answer["shared_secret"] == base64.b64encode(expected).decode()
        ack = await ps.subscribe(channel, auth=answer["auth"])
        assert ack["event"] == "pusher_internal:subscription_succeeded"
        await asyncio.to_thread(sdk(server).trigger, channel, "statement", {"iban": "DE00 1234"})
        frame = await expect(ps.ws, "statement")
        assert set(frame["data"]) == {"nonce", "ciphertext"} and "1234" not in frame["raw_data"]
        assert open_box(answer["shared_secret"], frame["data"]) == {"iban": "DE00 1234"}


async def test_the_pusher_driver_seals_for_encrypted_channels(server):
    from django_broadcasting import broadcast_to_channel
    from django_broadcasting.drivers.pusher import PusherDriver

    channel = "private-encrypted-user.6"
    driver = PusherDriver(
        "pusher",
        {"host": "127.0.0.1", "port": server.port, "app_id": APP_ID, "key": APP_KEY, "secret": APP_SECRET},
    )
    async with PusherSocket(server) as ps:
        answer = await authorize(server, ps.socket_id, channel, "6")
        await ps.subscribe(channel, auth=answer["auth"])
        with override_settings(BROADCASTING={"PUSHER_ENCRYPTION_MASTER_KEY_BASE64": MASTER_KEY}):
            await asyncio.to_thread(
                broadcast_to_channel, channel, "note", {"text": "via driver"}, driver=driver
            )
        frame = await expect(ps.ws, "note")
        assert open_box(answer["shared_secret"], frame["data"]) == {"text": "via driver"}


async def test_plaintext_for_an_encrypted_channel_is_refused_by_the_http_api(server):
    body = json.dumps({"name": "leak", "channels": ["private-encrypted-user.5"], "data": '{"n": 1}'}).encode()
    path = f"/apps/{APP_ID}/events"
    async with httpx.AsyncClient() as client:
        response = await client.post(
            server.url(f"{path}?{signed_query('POST', path, body)}"),
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400 and "must be encrypted" in response.text
    with pytest.raises(ValueError):  # the SDK refuses several channels itself
        sdk(server).trigger(["private-encrypted-user.5", "private-encrypted-user.6"], "e", {})
    from pusher.crypto import encrypt

    payload = json.dumps(encrypt("private-encrypted-user.5", "{}", base64.b64decode(MASTER_KEY)))
    body = json.dumps(
        {"name": "e", "channels": ["private-encrypted-user.5", "private-encrypted-user.6"], "data": payload}
    ).encode()
    async with httpx.AsyncClient() as client:
        response = await client.post(
            server.url(f"{path}?{signed_query('POST', path, body)}"),
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400 and "alone" in response.text


async def test_client_events_are_refused_on_both_protocols(server):
    channel = "private-encrypted-user.7"
    async with PusherSocket(server) as ps:
        answer = await authorize(server, ps.socket_id, channel, "7")
        await ps.subscribe(channel, auth=answer["auth"])
        await send(ps.ws, "client-typing", {"x": 1}, channel=channel)
        error = await expect(ps.ws, "pusher:error")
        assert error["data"]["code"] is None
        assert "not supported on encrypted channel" in error["data"]["message"]
    async with await wsclient.connect(server.ws_url(f"/ws?auth_token={wsclient.make_token(7)}")) as ws:
        await wsclient.expect(ws, "connected")
        await wsclient.subscribe(ws, channel)
        await ws.send(json.dumps({"action": "whisper", "channel": channel, "event": "typing", "data": {}}))
        error = await wsclient.expect(ws, "error")
        assert error["data"]["code"] == 4031 and error["channel"] == channel


async def test_encrypted_and_plain_user_channels_are_separate(server):
    async with await wsclient.connect(server.ws_url(f"/ws?auth_token={wsclient.make_token(8)}")) as ws:
        await wsclient.expect(ws, "connected")
        await wsclient.subscribe(ws, "user.8")
        await wsclient.subscribe(ws, "private-encrypted-user.8")
        await asyncio.to_thread(sdk(server).trigger, "private-encrypted-user.8", "secret", {"n": 1})
        await asyncio.to_thread(sdk(server).trigger, "private-user.8", "plain", {"n": 2})
        secret = await wsclient.expect(ws, "secret")
        assert secret["channel"] == "private-encrypted-user.8" and set(secret["data"]) == {
            "nonce",
            "ciphertext",
        }
        plain = await wsclient.expect(ws, "plain")
        assert plain["channel"] == "user.8" and plain["data"] == {"n": 2}
