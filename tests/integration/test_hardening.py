"""Regression tests for attacks an adversarial review reproduced, replayed against real servers.

Each test sends what the attacker sent (raw frames, raw HTTP) to daphne and uvicorn serving the
example project with ``DEBUG`` off and explicit secrets, and checks the server refuses it with a
clear error, logs no traceback, and keeps serving. docs/security.md lists them with their findings.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import uuid

import httpx
import pytest

from tests.fuzz.harness import PUSHER_EVENTS_PATH, TRIGGER_SECRET, pusher_api_params, trigger_headers
from tests.integration import wsclient
from tests.integration.pusher_client import PUSHER_ENV, PusherSocket, channel_auth, expect, send
from tests.integration.pusher_client import closed_with as pusher_closed_with
from tests.servers import ServerProcess, create_user

pytestmark = pytest.mark.integration

PRODUCTION_ENV = {
    **PUSHER_ENV,
    "BROADCAST_TRIGGER_SECRET": TRIGGER_SECRET,
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "hardening-" + "k3y-0123456789abcdefghijklmnopqrstuvwxyz" * 2,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
}
# 8,000 levels of nesting in well under the 16 KB frame limit.
DEEP = "[" * 8000 + "]" * 8000


@pytest.fixture(params=["daphne", "uvicorn", "uvicorn-front"], scope="module")
def server(request, migrated_db_path, tmp_path_factory):
    srv = ServerProcess(
        request.param,
        env={"DATABASE_PATH": str(migrated_db_path), **PRODUCTION_ENV},
        log_path=tmp_path_factory.mktemp("hardening") / f"{request.param}.log",
    ).start()
    yield srv
    srv.stop()
    if request.session.testsfailed:
        print(srv.log_tail(100))


def assert_no_traceback(server: ServerProcess) -> None:
    log = server.log_text()
    assert "Traceback" not in log and "RecursionError" not in log, server.log_tail(80)


# -- finding 2: client events follow the kind of the channel subscribed -------------------------
async def test_client_event_on_private_alias_of_a_public_channel_is_refused(server):
    async with (
        PusherSocket(server) as attacker,
        await wsclient.connect(server.ws_url("/ws?channel=general")) as native,
    ):
        await wsclient.expect(native, "subscribed")
        assert (await attacker.subscribe("general"))["event"] == "pusher_internal:subscription_succeeded"
        await send(attacker.ws, "client-x", {"forged": True}, channel="private-general")
        error = await expect(attacker.ws, "pusher:error")
        assert "private and presence" in error["data"]["message"]
        await wsclient.nothing(native, 0.5)


# -- finding 5: the sender of a presence client event, whatever the alias -----------------------
async def test_presence_client_event_on_private_presence_alias_names_its_sender(server):
    async with PusherSocket(server) as a, PusherSocket(server) as b:
        channel_data = json.dumps({"user_id": "31", "user_info": {}})
        joined = await a.subscribe("private-presence-chat.31", channel_data=channel_data)
        assert joined["event"] == "pusher_internal:subscription_succeeded", joined
        await b.join("presence-chat.31", "32")
        await send(a.ws, "client-typing", {"x": 1}, channel="private-presence-chat.31")
        frame = await expect(b.ws, "client-typing")
        assert frame["user_id"] == "31" and frame["data"] == {"x": 1}


# -- finding 6: a trailing newline is not a valid name ------------------------------------------
async def test_names_ending_in_newline_are_refused(server):
    async with await wsclient.connect(server.ws_url("/ws")) as ws:
        await wsclient.expect(ws, "connected")
        for name in ("admin.x\n", "general\n"):
            frame = await wsclient.subscribe(ws, name)
            assert frame["event"] == "error" and frame["data"]["code"] == 4003, frame
    async with PusherSocket(server) as ps:
        refused = await ps.subscribe("admin.x\n")
        assert refused["event"] == "pusher:subscription_error" and refused["data"]["status"] == 400
        await ps.subscribe("private-user.40")
        await send(ps.ws, "client-x\n", {}, channel="private-user.40")
        assert "control characters" in (await expect(ps.ws, "pusher:error"))["data"]["message"]
    token = wsclient.make_token(40)
    response = httpx.post(
        server.url("/broadcasting/auth"),
        data={"socket_id": "1.2", "channel_name": "private-user.40\n"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400, response.text
    response = httpx.post(
        server.url("/broadcasting/auth"),
        data={"socket_id": "1.2\n", "channel_name": "private-user.40"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400, response.text


# -- finding 7: deeply nested JSON -----------------------------------------------------------------
async def test_deep_json_gets_one_error_frame_and_no_traceback(server):
    async with await wsclient.connect(server.ws_url("/ws")) as ws:
        await wsclient.expect(ws, "connected")
        for body in (DEEP, json.dumps({"action": "ping", "data": json.loads("[" * 500 + "]" * 500)})):
            await ws.send(body)
            error = await wsclient.expect(ws, "error")
            assert error["data"]["code"] == 4000 and "nested" in error["data"]["message"], error
        await ws.send(json.dumps({"action": "ping"}))
        await wsclient.expect(ws, "pong")
    async with PusherSocket(server) as ps:
        for body in (DEEP, json.dumps({"event": "pusher:subscribe", "data": DEEP[:4000] + DEEP[-4000:]})):
            await ps.ws.send(body)
            assert "nested" in (await expect(ps.ws, "pusher:error"))["data"]["message"]
        await send(ps.ws, "pusher:ping")
        await expect(ps.ws, "pusher:pong")
    assert_no_traceback(server)


def test_deep_json_to_broadcasting_auth_is_a_400(server):
    token = wsclient.make_token(41)
    for path in ("/broadcasting/auth", "/broadcasting/user-auth"):
        response = httpx.post(
            server.url(path),
            content=DEEP,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 400 and "nested" in response.json()["error"], response.text
    assert_no_traceback(server)


def test_signed_deep_publish_bodies_are_a_400(server):
    body = DEEP.encode()
    trigger = httpx.post(
        server.url("/api/broadcast/events"), content=body, headers=trigger_headers(body, "valid")
    )
    assert trigger.status_code == 400, trigger.text
    nested_data = json.dumps({"name": "e", "channels": ["general"], "data": DEEP}).encode()
    for content in (body, nested_data):
        api = httpx.post(
            server.url(PUSHER_EVENTS_PATH),
            params=pusher_api_params(PUSHER_EVENTS_PATH, content, "valid"),
            content=content,
            headers={"Content-Type": "application/json"},
        )
        assert api.status_code < 500, api.text
    assert_no_traceback(server)


async def test_deep_jwt_header_is_refused_at_handshake(server):
    import base64

    header = base64.urlsafe_b64encode(('{"alg":' + "[" * 3000 + "]" * 3000 + "}").encode()).rstrip(b"=")
    token = header.decode() + ".e30.c2ln"
    with pytest.raises(Exception) as info:
        async with await wsclient.connect(server.ws_url(f"/ws?auth_token={token}")):
            pass
    assert "403" in str(info.value), info.value
    response = httpx.post(
        server.url("/broadcasting/auth"),
        data={"socket_id": "1.2", "channel_name": "private-user.1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert_no_traceback(server)


# -- finding 4: a blank Bearer token does not skip the CSRF check ------------------------------
def _post_raw(server: ServerProcess, path: str, body: str, headers: dict[str, bytes]) -> tuple[int, str]:
    """POST with header values as raw bytes (httpx refuses a non-ASCII value such as ``\\xa0``)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.putrequest("POST", path)
        for name, value in {
            "Content-Type": b"application/x-www-form-urlencoded",
            "Content-Length": str(len(body)).encode(),
            **headers,
        }.items():
            conn.putheader(name, value)
        conn.endheaders(body.encode())
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def test_blank_bearer_token_with_a_session_cookie_still_needs_csrf(server, migrated_db_path):
    username = f"harden-{uuid.uuid4().hex[:8]}"
    user_id = create_user(migrated_db_path, username, "pw-123456", is_staff=True)
    with httpx.Client(base_url=server.base_url) as client:
        page = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        login = client.post(
            "/admin/login/?next=/admin/",
            data={"username": username, "password": "pw-123456", "csrfmiddlewaretoken": token},
        )
        assert login.status_code == 302, login.text[:300]
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items()).encode()
    form = f"socket_id=7.8&channel_name=private-user.{user_id}"
    for blank in (b"Bearer \xa0", b"Bearer \t", b"bearer  ", b"Bearer"):
        for path, body in (("/broadcasting/auth", form), ("/broadcasting/user-auth", "socket_id=7.8")):
            status, text = _post_raw(server, path, body, {"Authorization": blank, "Cookie": cookie})
            assert status == 403 and "CSRF" in text, (blank, path, status, text)
    # The same session with its CSRF token is signed: the refusal above was the CSRF check.
    csrf = dict(item.split("=", 1) for item in cookie.decode().split("; "))["csrftoken"]
    status, text = _post_raw(
        server, "/broadcasting/auth", form, {"Cookie": cookie, "X-CSRFToken": csrf.encode()}
    )
    assert status == 200 and json.loads(text)["auth"] == channel_auth("7.8", f"private-user.{user_id}")


# -- the server keeps serving after all of the above -------------------------------------------
async def test_server_still_answers_and_delivers(server):
    import pusher

    api = pusher.Pusher(
        app_id=PUSHER_ENV["PUSHER_APP_ID"],
        key=PUSHER_ENV["PUSHER_APP_KEY"],
        secret=PUSHER_ENV["PUSHER_APP_SECRET"],
        host=server.host,
        port=server.port,
        ssl=False,
    )
    async with PusherSocket(server) as ps, await wsclient.connect(server.ws_url("/ws?channel=general")) as ws:
        await wsclient.expect(ws, "subscribed")
        await ps.subscribe("general")
        await send(ps.ws, "pusher:ping")
        await expect(ps.ws, "pusher:pong")
        await asyncio.to_thread(api.trigger, ["general"], "after-attacks", {"ok": 1})
        assert (await wsclient.expect(ws, "after-attacks"))["data"] == {"ok": 1}
        assert (await expect(ps.ws, "after-attacks"))["data"] == {"ok": 1}
    assert_no_traceback(server)


# -- uvicorn cuts an oversized frame before buffering it -----------------------------------------
async def test_broadcast_websocket_under_uvicorn_caps_the_frame_size(migrated_db_path, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import websockets

    from tests.servers import REPO_ROOT, free_port, port_open, server_env, wait_for

    port = free_port()
    log = open(tmp_path / "uvicorn-cli.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "manage.py"), "broadcast", "websocket", "--server", "uvicorn",
         "--port", str(port), "--skip-checks"],
        cwd=REPO_ROOT, env=server_env({"DATABASE_PATH": str(migrated_db_path)}), stdout=log,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        await asyncio.to_thread(
            wait_for, lambda: port_open("127.0.0.1", port) or process.poll() is not None, 30, 0.05, "uvicorn"
        )
        assert process.poll() is None, (tmp_path / "uvicorn-cli.log").read_text()
        url = f"ws://127.0.0.1:{port}/ws"
        async with await wsclient.connect(url, max_size=None) as ws:
            await wsclient.expect(ws, "connected")
            await ws.send(json.dumps({"action": "ping", "data": "x" * 20_000}))  # over 16 KB, under the cap
            assert (await wsclient.expect(ws, "error"))["data"]["code"] == 4009
            await ws.send(json.dumps({"action": "ping"}))
            await wsclient.expect(ws, "pong")  # the application's limit keeps the socket open
            await ws.send("x" * 200_000)  # past 4 x MAX_FRAME_SIZE bytes: uvicorn closes at once
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        log.close()


# -- found by fuzzing: a WebSocket path no route serves --------------------------------------------
@pytest.mark.parametrize("path", ["/ws/%3F", "/ws/a/b", "/nowhere", "/app/", "/app/a/b"])
async def test_unrouted_websocket_path_is_a_403_without_traceback(server, path):
    with pytest.raises(Exception) as info:
        async with await wsclient.connect(server.ws_url(path)):
            pass
    assert "403" in str(info.value), info.value
    assert_no_traceback(server)


# -- found by fuzzing: an unparseable form body ------------------------------------------------------
@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/x"]
)
def test_unparseable_form_body_is_a_400_without_traceback(server, content_type):
    for path in ("/broadcasting/auth", "/broadcasting/user-auth"):
        response = httpx.post(server.url(path), content=b"\x00--", headers={"Content-Type": content_type})
        assert response.status_code == 400, response.text
    assert_no_traceback(server)


# -- found by fuzzing: digits that str.isdigit() accepts and int() refuses ---------------------------
async def test_non_ascii_digits_in_protocol_version_and_last_id(server):
    async with await wsclient.connect(server.ws_url("/app/test-key?protocol=%C2%B2")) as ws:
        code, frames = await pusher_closed_with(ws)
        assert code == 4007 and frames[-1]["data"]["code"] == 4007, (code, frames)
    async with await wsclient.connect(server.ws_url("/ws")) as ws:
        await wsclient.expect(ws, "connected")
        await ws.send(json.dumps({"action": "subscribe", "channel": "general", "last_id": "x:\u00b2"}))
        await wsclient.expect(ws, "subscribed")
        await ws.send(json.dumps({"action": "ping"}))
        seen = []
        while (frame := await wsclient.recv(ws))["event"] != "pong":
            seen.append(frame)
        assert all(frame["event"] != "error" or frame["data"]["code"] != 4500 for frame in seen), seen
    assert_no_traceback(server)
