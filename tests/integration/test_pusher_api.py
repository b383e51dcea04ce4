"""The Pusher HTTP API (driven by the PyPI ``pusher`` client), ``/broadcasting/auth`` and the ``pusher`` driver."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid

import httpx
import pusher
import pytest
from pusher.errors import PusherBadAuth, PusherBadRequest, PusherBadStatus

from django_broadcasting.drivers.pusher import PusherDriver
from django_broadcasting.messages import Message
from tests.integration import wsclient
from tests.integration.pusher_client import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    PUSHER_ENV,
    PusherSocket,
    channel_auth,
    expect,
    nothing,
    signed_query,
    user_auth,
)
from tests.servers import ServerProcess, create_user

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request, migrated_db_path, tmp_path_factory):
    """The example project on daphne and on uvicorn: the API is answered by the ASGI ingress."""
    srv = ServerProcess(
        request.param,
        env={"DATABASE_PATH": str(migrated_db_path), **PUSHER_ENV},
        log_path=tmp_path_factory.mktemp("pusher-api") / f"{request.param}.log",
    ).start()
    yield srv
    srv.stop()
    if request.session.testsfailed:
        print(srv.log_tail(100))


def client(server, **overrides) -> pusher.Pusher:
    options = {
        "app_id": APP_ID,
        "key": APP_KEY,
        "secret": APP_SECRET,
        "host": "127.0.0.1",
        "port": server.port,
        "ssl": False,
        **overrides,
    }
    return pusher.Pusher(**options)


def signed_url(
    server,
    method: str,
    path: str,
    body: bytes = b"",
    timestamp: int | None = None,
    secret: str = APP_SECRET,
    **params: str,
) -> str:
    """Sign like the Pusher spec says, independently of the code under test."""
    return server.url(path) + "?" + signed_query(method, path, body, timestamp, secret, **params)


def post(server, path, payload, **kwargs):
    body = json.dumps(payload).encode()
    return httpx.post(
        signed_url(server, "POST", path, body, **kwargs),
        content=body,
        headers={"Content-Type": "application/json"},
    )


# -- events ------------------------------------------------------------------------------------
async def test_trigger_and_batch_reach_pusher_and_native_clients(server):
    api = client(server)
    async with PusherSocket(server) as ps, await wsclient.connect(server.ws_url("/ws")) as native:
        await wsclient.expect(native, "connected")
        await wsclient.subscribe(native, "general")
        await ps.subscribe("general")
        await ps.subscribe("announcements")
        assert await asyncio.to_thread(api.trigger, ["general", "announcements"], "news", {"n": 1}) == {}
        assert (await expect(ps.ws, "news", channel="general"))["data"] == {"n": 1}
        assert (await expect(ps.ws, "news", channel="announcements"))["data"] == {"n": 1}
        assert (await wsclient.expect(native, "news"))["data"] == {"n": 1}
        await asyncio.to_thread(
            api.trigger_batch,
            [
                {"channel": "general", "name": "one", "data": {"i": 1}},
                {"channel": "announcements", "name": "two", "data": "plain text"},
            ],
        )
        assert (await expect(ps.ws, "one"))["data"] == {"i": 1}
        assert (await expect(ps.ws, "two"))["data"] == "plain text"
        assert (await wsclient.expect(native, "one"))["data"] == {"i": 1}


async def test_sdk_requests_skip_django_middleware(server):
    """The SDK's calls are answered by the ASGI ingress: none of the example's middleware headers."""
    api = client(server)
    seen = []
    api._pusher_client.http.session.hooks["response"].append(lambda response, **kw: seen.append(response))
    async with PusherSocket(server) as ps:
        await ps.subscribe("general")
        await asyncio.to_thread(api.trigger, "general", "fast-path", {"n": 1})
        assert (await expect(ps.ws, "fast-path"))["data"] == {"n": 1}
    await asyncio.to_thread(api.trigger_batch, [{"channel": "general", "name": "b", "data": "{}"}])
    await asyncio.to_thread(api.channels_info)
    assert [r.status_code for r in seen] == [200, 200, 200]
    # XFrameOptionsMiddleware and SecurityMiddleware stamp every response Django produces.
    assert not any("X-Frame-Options" in r.headers or "X-Content-Type-Options" in r.headers for r in seen)
    assert httpx.get(server.url("/admin/login/")).headers["X-Frame-Options"] == "DENY"


async def test_events_with_info_report_channel_counts(server):
    async with PusherSocket(server) as ps:
        await ps.subscribe("general")
        response = post(
            server,
            f"/apps/{APP_ID}/events",
            {
                "name": "x",
                "channels": ["general", "presence-chat.404"],
                "data": "{}",
                "info": "subscription_count,user_count",
            },
        )
        assert response.status_code == 200
        assert response.json()["channels"] == {
            "general": {"subscription_count": 1},  # user_count is for presence channels only
            "presence-chat.404": {"subscription_count": 0, "user_count": 0},
        }


async def test_events_excluding_a_socket_id(server):
    async with PusherSocket(server) as a, PusherSocket(server) as b:
        await a.subscribe("general")
        await b.subscribe("general")
        await asyncio.to_thread(client(server).trigger, "general", "evt", {}, a.socket_id)
        await expect(b.ws, "evt")
        await nothing(a.ws)


# -- channel information ------------------------------------------------------------------------
async def test_channel_info_and_presence_users(server):
    api = client(server)
    room = f"presence-chat.{uuid.uuid4().hex[:8]}"
    async with PusherSocket(server) as a, PusherSocket(server) as b:
        await a.join(room, "1", {"name": "A"})
        await b.join(room, "2", {"name": "B"})
        await a.subscribe("private-user.31")
        info = await asyncio.to_thread(api.channel_info, room, ["user_count", "subscription_count"])
        assert info == {"occupied": True, "user_count": 2, "subscription_count": 2}
        users = await asyncio.to_thread(api.users_info, room)
        assert sorted(u["id"] for u in users["users"]) == ["1", "2"]
        listing = await asyncio.to_thread(api.channels_info, "presence-", ["user_count"])
        assert listing["channels"][room] == {"user_count": 2}
        everything = await asyncio.to_thread(api.channels_info)
        assert "private-user.31" in everything["channels"] and room in everything["channels"]
        private = await asyncio.to_thread(api.channel_info, "private-user.31", ["subscription_count"])
        assert private == {"occupied": True, "subscription_count": 1}
    empty = await asyncio.to_thread(api.channel_info, "private-user.999")
    assert empty == {"occupied": False}


async def test_user_count_only_for_presence_and_users_only_for_presence(server):
    api = client(server)
    with pytest.raises(PusherBadRequest):
        await asyncio.to_thread(api.channel_info, "general", ["user_count"])
    with pytest.raises(PusherBadRequest):
        await asyncio.to_thread(api.users_info, "general")
    with pytest.raises(PusherBadRequest):
        await asyncio.to_thread(api.channels_info, None, ["user_count"])


# -- signatures and errors ----------------------------------------------------------------------
def test_bad_signature_wrong_key_and_stale_timestamp_are_401(server):
    with pytest.raises(PusherBadAuth):
        client(server, secret="not-the-secret").trigger("general", "x", {})
    with pytest.raises(PusherBadAuth):
        client(server, key="other-key").trigger("general", "x", {})
    stale = post(
        server,
        f"/apps/{APP_ID}/events",
        {"name": "x", "channels": ["general"], "data": "{}"},
        timestamp=int(time.time()) - 700,
    )
    assert stale.status_code == 401 and "Timestamp expired" in stale.text
    fresh = post(server, f"/apps/{APP_ID}/events", {"name": "x", "channels": ["general"], "data": "{}"})
    assert fresh.status_code == 200 and fresh.json() == {}


def test_tampered_body_and_missing_auth_are_401(server):
    body = json.dumps({"name": "x", "channels": ["general"], "data": "{}"}).encode()
    url = signed_url(server, "POST", f"/apps/{APP_ID}/events", body)
    tampered = httpx.post(
        url, content=body.replace(b"general", b"generaL"), headers={"Content-Type": "application/json"}
    )
    assert tampered.status_code == 401 and "body_md5" in tampered.text
    unsigned = httpx.post(server.url(f"/apps/{APP_ID}/events"), content=body)
    assert unsigned.status_code == 401


def test_bad_requests_are_400(server):
    path = f"/apps/{APP_ID}/events"
    assert (
        post(server, path, {"name": "x", "channels": [f"c{i}" for i in range(101)], "data": "{}"}).status_code
        == 400
    )
    assert post(server, path, {"name": "x", "data": "{}"}).status_code == 400
    assert post(server, path, {"name": "x", "channels": ["bad channel!"], "data": "{}"}).status_code == 400
    assert (
        post(
            server, path, {"name": "x", "channels": ["general"], "data": "{}", "socket_id": "nope"}
        ).status_code
        == 400
    )
    batch = [{"channel": "general", "name": "x", "data": "{}"}] * 11
    assert post(server, f"/apps/{APP_ID}/batch_events", {"batch": batch}).status_code == 400
    body = b"{not json"
    assert httpx.post(signed_url(server, "POST", path, body), content=body).status_code == 400


def test_payload_too_large_is_413_and_unknown_app_is_404(server):
    big = post(server, f"/apps/{APP_ID}/events", {"name": "x", "channels": ["general"], "data": "x" * 70_000})
    assert big.status_code == 413
    with pytest.raises(PusherBadStatus, match="404"):
        client(server, app_id="999").trigger("general", "x", {})


# -- /broadcasting/auth and /broadcasting/user-auth ---------------------------------------------
def bearer(user_id, **claims):
    return {"Authorization": f"Bearer {wsclient.make_token(user_id, **claims)}"}


def test_channel_auth_form_and_json_with_bearer(server):
    url = server.url("/broadcasting/auth")
    form = httpx.post(url, data={"socket_id": "123.456", "channel_name": "private-user.5"}, headers=bearer(5))
    assert form.status_code == 200
    assert form.json() == {"auth": channel_auth("123.456", "private-user.5")}
    as_json = httpx.post(
        url, json={"socket_id": "123.456", "channel_name": "private-user.5"}, headers=bearer(5)
    )
    assert as_json.status_code == 200 and as_json.json() == form.json()


def test_channel_auth_presence_returns_channel_data(server):
    response = httpx.post(
        server.url("/broadcasting/auth"),
        headers=bearer(8, name="Eve"),
        data={"socket_id": "1.2", "channel_name": "presence-chat.4"},
    )
    assert response.status_code == 200
    body = response.json()
    channel_data = json.loads(body["channel_data"])
    assert channel_data == {"user_id": "8", "user_info": {"id": "8", "name": "Eve"}}
    assert body["auth"] == channel_auth("1.2", "presence-chat.4", body["channel_data"])


def test_channel_auth_refusals(server):
    url = server.url("/broadcasting/auth")
    other_user = httpx.post(
        url, data={"socket_id": "1.2", "channel_name": "private-user.5"}, headers=bearer(6)
    )
    assert other_user.status_code == 403
    anonymous = httpx.post(url, data={"socket_id": "1.2", "channel_name": "private-user.5"})
    assert anonymous.status_code == 403
    bad_token = httpx.post(
        url,
        data={"socket_id": "1.2", "channel_name": "private-user.5"},
        headers={"Authorization": "Bearer nonsense"},
    )
    assert bad_token.status_code == 401
    assert (
        httpx.post(
            url, data={"socket_id": "x", "channel_name": "private-user.5"}, headers=bearer(5)
        ).status_code
        == 400
    )
    assert httpx.post(url, data={"socket_id": "1.2"}, headers=bearer(5)).status_code == 400
    assert httpx.get(url).status_code == 405


def test_user_auth(server):
    url = server.url("/broadcasting/user-auth")
    response = httpx.post(url, data={"socket_id": "5.6"}, headers=bearer(12, name="Ann"))
    assert response.status_code == 200
    body = response.json()
    assert json.loads(body["user_data"]) == {"id": "12", "user_info": {"name": "Ann"}}
    assert body["auth"] == user_auth("5.6", body["user_data"])
    assert httpx.post(url, data={"socket_id": "5.6"}).status_code == 403


def test_session_auth_requires_csrf(server, migrated_db_path):
    username = f"pusher-{uuid.uuid4().hex[:8]}"
    user_id = create_user(migrated_db_path, username, "pw-123456", is_staff=True)
    with httpx.Client(base_url=server.base_url) as http:
        page = http.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        login = http.post(
            "/admin/login/?next=/admin/",
            data={
                "username": username,
                "password": "pw-123456",
                "csrfmiddlewaretoken": token,
            },
        )
        assert login.status_code == 302, login.text[:300]
        form = {"socket_id": "7.8", "channel_name": f"private-user.{user_id}"}
        assert http.post("/broadcasting/auth", data=form).status_code == 403  # no CSRF token
        csrf = http.cookies["csrftoken"]
        django_style = http.post("/broadcasting/auth", data=form, headers={"X-CSRFToken": csrf})
        assert django_style.status_code == 200
        assert django_style.json()["auth"] == channel_auth("7.8", f"private-user.{user_id}")
        laravel_style = http.post("/broadcasting/auth", data=form, headers={"X-CSRF-TOKEN": csrf})
        assert laravel_style.status_code == 200


async def test_signature_from_auth_endpoint_subscribes(server):
    async with PusherSocket(server) as ps:
        response = await asyncio.to_thread(
            httpx.post,
            server.url("/broadcasting/auth"),
            headers=bearer(21, name="Kim"),
            data={"socket_id": ps.socket_id, "channel_name": "presence-chat.21"},
        )
        body = response.json()
        ack = await ps.subscribe("presence-chat.21", auth=body["auth"], channel_data=body["channel_data"])
        assert ack["data"]["presence"]["hash"] == {"21": {"id": "21", "name": "Kim"}}


# -- the pusher driver --------------------------------------------------------------------------
async def test_pusher_driver_publishes_through_the_api(server):
    driver = PusherDriver(
        "pusher",
        {"host": "127.0.0.1", "port": server.port, "app_id": APP_ID, "key": APP_KEY, "secret": APP_SECRET},
    )
    assert driver.base_url() == f"http://127.0.0.1:{server.port}"
    async with PusherSocket(server) as ps:
        await ps.subscribe("private-user.44")
        await ps.subscribe("general")
        await driver.abroadcast(Message.for_channels(["user.44", "general"], "shipped", {"id": 1}))
        frames = [await expect(ps.ws, "shipped"), await expect(ps.ws, "shipped")]
        assert {f["channel"] for f in frames} == {"private-user.44", "general"}
        await driver.abroadcast([Message("general", "a", {"x": 1}), Message("user.44", "b", [1, 2])])
        assert (await expect(ps.ws, "a"))["data"] == {"x": 1}
        assert (await expect(ps.ws, "b"))["data"] == [1, 2]


def test_pusher_driver_groups_requests():
    driver = PusherDriver("pusher", {"host": "h", "app_id": "1", "key": "k", "secret": "s"})
    same = Message.for_channels([f"c{i}" for i in range(150)], "e", {"a": 1})
    requests = driver.requests(same)
    assert [endpoint for endpoint, _ in requests] == ["events", "events"]
    assert [len(body["channels"]) for _, body in requests] == [100, 50]
    mixed = [Message(f"c{i}", "e", {"i": i}) for i in range(12)]
    assert [(e, len(b["batch"])) for e, b in driver.requests(mixed)] == [
        ("batch_events", 10),
        ("batch_events", 2),
    ]
    assert driver.requests([Message("presence.chat.1", "e", {})])[0][1]["channels"] == ["presence-chat.1"]


async def test_pusher_driver_errors_are_transport_errors(server):
    from django_broadcasting.exceptions import TransportError

    driver = PusherDriver(
        "pusher",
        {"host": "127.0.0.1", "port": server.port, "app_id": APP_ID, "key": APP_KEY, "secret": "wrong"},
    )
    with pytest.raises(TransportError, match="401"):
        await driver.abroadcast([Message("general", "e", {})])


def test_docs_example_runs(server, monkeypatch):
    """The ```python example of docs/laravel-echo.md, against a real server."""
    from tests.docs_blocks import run_blocks

    for name, value in {**PUSHER_ENV, "PORT": str(server.port)}.items():
        monkeypatch.setenv(name, value)
    namespace = run_blocks("laravel-echo.md", namespace={})
    assert namespace["members"] == {"occupied": False, "user_count": 0}
    assert isinstance(namespace["occupied"], dict)
