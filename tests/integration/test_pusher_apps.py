"""Several Pusher apps on one server (``PUSHER_APPS``), and on two servers over Redis.

Each app has its own key (``/app/{key}``), id and secret (the HTTP API), and its own channels:
events of app A never reach app B's subscribers of a channel with the same name. Signatures are
made here with hmac (independently of the code under test) and by the PyPI ``pusher`` SDK.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re

import httpx
import pusher
import pytest
import websockets
from pusher.errors import PusherBadAuth, PusherBadStatus

from tests.integration import wsclient
from tests.integration.pusher_client import PusherSocket, closed_with, expect, recv, send
from tests.integration.redis_support import redis_env

pytestmark = pytest.mark.integration

SHOP = {"id": "1001", "key": "shop-key", "secret": "shop-secret-0123456789"}
CHAT = {
    "id": "1002",
    "key": "chat-key",
    "secret": "chat-secret-9876543210",
    "allowed_origins": ["https://chat.example"],
    "client_event_rate_limit": 5,
    "encryption_master_key_base64": "Y2hhdC1tYXN0ZXIta2V5LTMyLWJ5dGVzLWxvbmctISE=",  # 32 bytes
}
QUIET = {
    "id": "1003",
    "key": "quiet-key",
    "secret": "quiet-secret-0000000000",
    "enable_client_messages": False,
}
LIMITED = {"id": "1004", "key": "limited-key", "secret": "limited-secret-000000000", "max_connections": 1}
STATS_TOKEN = "apps-stats-token"
APPS_ENV = {"PUSHER_APPS": json.dumps([SHOP, CHAT, QUIET, LIMITED]), "BROADCAST_STATS_TOKEN": STATS_TOKEN}


@pytest.fixture(scope="module")
def server(request, migrated_db_path, tmp_path_factory):
    from tests.servers import ServerProcess

    srv = ServerProcess(
        "uvicorn",
        env={"DATABASE_PATH": str(migrated_db_path), **APPS_ENV},
        log_path=tmp_path_factory.mktemp("pusher-apps") / "uvicorn.log",
    ).start()
    yield srv
    srv.stop()
    if request.session.testsfailed:
        print(srv.log_tail(100))


def api(server, app: dict, **overrides) -> pusher.Pusher:
    options = {"app_id": app["id"], "key": app["key"], "secret": app["secret"], "host": "127.0.0.1",
               "port": server.port, "ssl": False, **overrides}  # fmt: skip
    return pusher.Pusher(**options)


def sign(app: dict, text: str) -> str:
    return f"{app['key']}:{hmac.new(app['secret'].encode(), text.encode(), hashlib.sha256).hexdigest()}"


async def subscribe(socket: PusherSocket, app: dict, channel: str, channel_data: str | None = None) -> dict:
    """Subscribe with a signature made with ``app``'s secret (private and presence channels)."""
    auth = None
    if channel.startswith(("private-", "presence-")):
        text = f"{socket.socket_id}:{channel}" + (f":{channel_data}" if channel_data else "")
        auth = sign(app, text)
    return await socket.subscribe(channel, auth=auth, channel_data=channel_data, sign=False)


async def test_each_key_connects_to_its_app_and_an_unknown_key_is_refused(server):
    for app in (SHOP, CHAT):
        async with PusherSocket(server, key=app["key"]) as socket:
            assert re.fullmatch(r"\d+\.\d+", socket.socket_id)
    async with websockets.connect(server.ws_url("/app/app-key?protocol=7")) as ws:
        code, frames = await closed_with(ws)
    assert code == 4001 and frames[-1]["data"]["code"] == 4001


async def test_events_of_one_app_never_reach_another_apps_channel_of_the_same_name(server):
    async with (
        PusherSocket(server, key=SHOP["key"]) as shop,
        PusherSocket(server, key=CHAT["key"]) as chat,
        await wsclient.connect(server.ws_url("/ws")) as native,
    ):
        await wsclient.expect(native, "connected")
        await wsclient.subscribe(native, "orders")  # native clients are the default app's (the first)
        for socket, app in ((shop, SHOP), (chat, CHAT)):
            ack = await subscribe(socket, app, "orders")
            assert ack["event"] == "pusher_internal:subscription_succeeded"
            ack = await subscribe(socket, app, "private-user.5")
            assert ack["event"] == "pusher_internal:subscription_succeeded", ack
        await asyncio.to_thread(
            api(server, CHAT).trigger, ["orders", "private-user.5"], "chat-only", {"app": "chat"}
        )
        await asyncio.to_thread(
            api(server, SHOP).trigger, ["orders", "private-user.5"], "shop-only", {"app": "shop"}
        )
        # The shop's sockets get the shop's events first: the chat's (sent before) never came.
        first = await recv(shop.ws)
        assert (first["event"], first["channel"], first["data"]) == ("shop-only", "orders", {"app": "shop"})
        assert (await recv(shop.ws))["event"] == "shop-only"
        native_first = await wsclient.recv(native)
        assert (native_first["event"], native_first["data"]) == ("shop-only", {"app": "shop"})
        chat_events = [await recv(chat.ws), await recv(chat.ws)]
        assert {(f["event"], f["channel"]) for f in chat_events} == {
            ("chat-only", "orders"),
            ("chat-only", "private-user.5"),
        }
        await wsclient.nothing(chat.ws)


async def test_presence_and_whispers_stay_within_their_app(server):
    async with (
        PusherSocket(server, key=SHOP["key"]) as alice,
        PusherSocket(server, key=CHAT["key"]) as bob,
        PusherSocket(server, key=CHAT["key"]) as carol,
    ):
        ack = await subscribe(alice, SHOP, "presence-room.1", json.dumps({"user_id": "1"}))
        assert ack["data"]["presence"]["ids"] == ["1"]
        ack = await subscribe(bob, CHAT, "presence-room.1", json.dumps({"user_id": "2"}))
        assert ack["data"]["presence"]["ids"] == ["2"]  # alice is in the shop's room, not this one
        ack = await subscribe(carol, CHAT, "presence-room.1", json.dumps({"user_id": "3"}))
        assert sorted(ack["data"]["presence"]["ids"]) == ["2", "3"]
        added = await expect(bob.ws, "pusher_internal:member_added")
        assert added["channel"] == "presence-room.1" and added["data"]["user_id"] == "3"
        await send(carol.ws, "client-typing", {"who": "carol"}, channel="presence-room.1")
        whisper = await expect(bob.ws, "client-typing")
        assert whisper["data"] == {"who": "carol"} and whisper["user_id"] == "3"
        users = await asyncio.to_thread(api(server, CHAT).users_info, "presence-room.1")
        assert sorted(u["id"] for u in users["users"]) == ["2", "3"]
        users = await asyncio.to_thread(api(server, SHOP).users_info, "presence-room.1")
        assert users == {"users": [{"id": "1"}]}
        listed = await asyncio.to_thread(api(server, SHOP).channels_info, None, ["subscription_count"])
        assert listed["channels"] == {"presence-room.1": {"subscription_count": 1}}
        await wsclient.nothing(alice.ws)  # no member_added of the chat's room, no whisper


async def test_wrong_secret_key_or_app_id_is_refused(server):
    with pytest.raises(PusherBadAuth):  # the chat's id signed with the shop's secret
        await asyncio.to_thread(api(server, CHAT, secret=SHOP["secret"]).trigger, "orders", "x", {})
    with pytest.raises(PusherBadAuth):  # the chat's id, the shop's key and secret
        await asyncio.to_thread(
            api(server, CHAT, key=SHOP["key"], secret=SHOP["secret"]).trigger, "orders", "x", {}
        )
    with pytest.raises(PusherBadStatus, match="404"):
        await asyncio.to_thread(api(server, SHOP, app_id="999").trigger, "orders", "x", {})
    # A subscription signed with another app's secret is refused.
    async with PusherSocket(server, key=CHAT["key"]) as chat:
        ack = await subscribe(chat, SHOP, "private-user.5")
        assert ack["event"] == "pusher:subscription_error" and ack["data"]["status"] == 401


async def test_broadcasting_auth_signs_with_the_app_of_the_socket(server):
    token = wsclient.make_token(5)
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        for app in (SHOP, CHAT, QUIET):
            async with PusherSocket(server, key=app["key"]) as socket:
                # The socket id says which app it belongs to: no extra parameter needed.
                answer = await http.post(
                    server.url("/broadcasting/auth"),
                    data={"socket_id": socket.socket_id, "channel_name": "private-user.5"},
                )
                assert answer.status_code == 200, answer.text
                assert answer.json()["auth"] == sign(app, f"{socket.socket_id}:private-user.5")
                ack = await socket.subscribe("private-user.5", auth=answer.json()["auth"], sign=False)
                assert ack["event"] == "pusher_internal:subscription_succeeded"
        # Or named explicitly, by key or id (pusher-js: channelAuthorization.params).
        for named in (CHAT["key"], CHAT["id"]):
            answer = await http.post(
                server.url(f"/broadcasting/auth?app={named}"),
                data={"socket_id": "123.456", "channel_name": "private-user.5"},
            )
            assert answer.json()["auth"] == sign(CHAT, "123.456:private-user.5")
        answer = await http.post(
            server.url("/broadcasting/auth"),
            data={"socket_id": "1.2", "channel_name": "private-user.5", "app": "nope"},
        )
        assert answer.status_code == 400 and "Unknown app" in answer.json()["error"]


async def test_terminate_connections_closes_the_user_in_one_app_only(server):
    user_data = json.dumps({"id": "77"})
    async with PusherSocket(server, key=SHOP["key"]) as shop, PusherSocket(server, key=CHAT["key"]) as chat:
        for socket, app in ((shop, SHOP), (chat, CHAT)):
            auth = sign(app, f"{socket.socket_id}::user::{user_data}")
            await send(socket.ws, "pusher:signin", {"auth": auth, "user_data": user_data})
            await expect(socket.ws, "pusher:signin_success")
        await asyncio.to_thread(api(server, CHAT).send_to_user, "77", "hello", {"app": "chat"})
        assert (await expect(chat.ws, "hello"))["data"] == {"app": "chat"}
        await asyncio.to_thread(api(server, CHAT).terminate_user_connections, "77")
        code, _ = await closed_with(chat.ws)
        assert code == 4009
        await send(shop.ws, "pusher:ping")
        assert (await recv(shop.ws))["event"] == "pusher:pong"  # no server-to-user event, still open


async def test_allowed_origins_and_client_event_limits_are_per_app(server):
    chat_url = server.ws_url(f"/app/{CHAT['key']}?protocol=7")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(chat_url, origin="https://shop.example", open_timeout=10)
    assert refused.value.response.status_code == 403
    async with websockets.connect(chat_url, origin="https://chat.example", open_timeout=10) as ws:
        assert (await recv(ws))["event"] == "pusher:connection_established"
    async with PusherSocket(server, key=QUIET["key"]) as quiet:
        await subscribe(quiet, QUIET, "private-user.5")
        await send(quiet.ws, "client-typing", {}, channel="private-user.5")
        error = await expect(quiet.ws, "pusher:error")
        assert "not enabled" in error["data"]["message"]
    async with PusherSocket(server, key=CHAT["key"]) as chat:
        await subscribe(chat, CHAT, "private-user.5")
        for _ in range(CHAT["client_event_rate_limit"] + 3):
            await send(chat.ws, "client-typing", {}, channel="private-user.5")
        error = await expect(chat.ws, "pusher:error")
        assert error["data"]["code"] == 4301


async def test_connection_quota_is_per_app(server):
    async with PusherSocket(server, key=LIMITED["key"]):
        async with websockets.connect(server.ws_url(f"/app/{LIMITED['key']}?protocol=7")) as ws:
            code, frames = await closed_with(ws)
        assert code == 4004 and frames[-1]["data"]["code"] == 4004
        async with PusherSocket(server, key=SHOP["key"]) as shop:  # other apps are not affected
            assert shop.socket_id


async def test_stats_and_metrics_per_app(server):
    async with (
        PusherSocket(server, key=SHOP["key"]) as shop,
        PusherSocket(server, key=CHAT["key"]) as chat1,
        PusherSocket(server, key=CHAT["key"]) as chat2,
    ):
        await subscribe(shop, SHOP, "orders")
        await subscribe(chat1, CHAT, "orders")
        await subscribe(chat2, CHAT, "lobby")
        await asyncio.to_thread(api(server, CHAT).trigger, ["orders", "lobby"], "tick", {})
        await expect(chat1.ws, "tick")
        await expect(chat2.ws, "tick")
        async with httpx.AsyncClient() as http:
            stats = (
                await http.get(
                    server.url("/api/broadcast/stats"), headers={"Authorization": f"Bearer {STATS_TOKEN}"}
                )
            ).json()
            metrics = (await http.get(server.url("/metrics"))).text
    apps = stats["apps"]
    assert set(apps) == {"1001", "1002", "1003", "1004"}
    assert apps["1002"]["connections"] == 2 and apps["1002"]["channels"] == 2
    assert (
        apps["1002"]["subscriptions"] == 2
        and apps["1002"]["messages_in"] >= 2
        and apps["1002"]["deliveries"] >= 2
    )
    assert apps["1001"]["connections"] == 1 and apps["1001"]["channels"] == 1
    assert apps["1003"] == {
        "connections": 0,
        "channels": 0,
        "subscriptions": 0,
        "messages_in": 0,
        "deliveries": 0,
    }
    assert 'broadcast_app_connections{app="1002"} 2.0' in metrics
    assert 'broadcast_app_connections{app="1001"} 1.0' in metrics
    assert 'broadcast_app_channels{app="1002"} 2.0' in metrics
    assert re.search(r'broadcast_app_messages_out_total\{app="1002"\} [1-9]', metrics)


@pytest.mark.redis
async def test_apps_stay_apart_across_two_nodes_over_redis(server_factory, redis_url, redis_prefix):
    env = {**redis_env(redis_url, redis_prefix), **APPS_ENV}
    a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
    async with (
        PusherSocket(a, key=SHOP["key"]) as shop_a,
        PusherSocket(b, key=CHAT["key"]) as chat_b,
        PusherSocket(a, key=CHAT["key"]) as chat_a,
    ):
        for socket, app in ((shop_a, SHOP), (chat_b, CHAT), (chat_a, CHAT)):
            await subscribe(socket, app, "orders")
        await asyncio.to_thread(api(a, CHAT).trigger, "orders", "chat-only", {"n": 1})
        await asyncio.to_thread(api(b, SHOP).trigger, "orders", "shop-only", {"n": 2})
        assert (await recv(shop_a.ws))["event"] == "shop-only"
        assert (await recv(chat_b.ws))["event"] == "chat-only"
        assert (await recv(chat_a.ws))["event"] == "chat-only"
        await wsclient.nothing(chat_b.ws)
        # Cluster-wide counts, per app, asked on either node.
        for node in (a, b):
            chat = await asyncio.to_thread(api(node, CHAT).channel_info, "orders", ["subscription_count"])
            shop = await asyncio.to_thread(api(node, SHOP).channel_info, "orders", ["subscription_count"])
            assert (chat["subscription_count"], shop["subscription_count"]) == (2, 1)


def test_docs_example_runs(server, monkeypatch):
    """The ```python several-apps example of docs/laravel-echo.md, against the two-app server."""
    from tests.docs_blocks import python_blocks, run_blocks

    blocks = python_blocks("laravel-echo.md", "several-apps")
    assert len(blocks) == 1
    monkeypatch.setenv("PORT", str(server.port))
    monkeypatch.setenv("SHOP_SECRET", SHOP["secret"])
    monkeypatch.setenv("CHAT_SECRET", CHAT["secret"])
    namespace = run_blocks("laravel-echo.md", blocks=blocks, namespace={})
    assert isinstance(namespace["chat_channels"], dict)


async def test_cache_and_encrypted_channels_belong_to_their_app(server):
    """A cache channel keeps each app's last event apart; encrypted channels use each app's key."""
    import base64

    from nacl.secret import SecretBox

    await asyncio.to_thread(api(server, CHAT).trigger, "cache-score", "goal", {"team": "chat"})
    async with PusherSocket(server, key=CHAT["key"]) as chat, PusherSocket(server, key=SHOP["key"]) as shop:
        ack = await subscribe(chat, CHAT, "cache-score")
        assert ack["event"] == "pusher_internal:subscription_succeeded"
        cached = await recv(chat.ws)
        assert (cached["event"], cached["channel"], cached["data"]) == (
            "goal",
            "cache-score",
            {"team": "chat"},
        )
        ack = await subscribe(shop, SHOP, "cache-score")
        assert ack["event"] == "pusher_internal:subscription_succeeded"
        assert await recv(shop.ws) == {"event": "pusher:cache_miss", "channel": "cache-score"}

    token = wsclient.make_token(5)
    master = base64.b64decode(CHAT["encryption_master_key_base64"])
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
        PusherSocket(server, key=CHAT["key"]) as chat,
        PusherSocket(server, key=SHOP["key"]) as shop,
    ):
        name = "private-encrypted-user.5"
        answer = await http.post(
            server.url("/broadcasting/auth"), data={"socket_id": chat.socket_id, "channel_name": name}
        )
        assert answer.status_code == 200, answer.text
        secret = base64.b64decode(answer.json()["shared_secret"])
        assert secret == hashlib.sha256(name.encode() + master).digest()
        ack = await chat.subscribe(name, auth=answer.json()["auth"], sign=False)
        assert ack["event"] == "pusher_internal:subscription_succeeded"
        # The shop app has no encryption key: its encrypted channels are refused.
        refused = await http.post(
            server.url("/broadcasting/auth"), data={"socket_id": shop.socket_id, "channel_name": name}
        )
        assert refused.status_code == 403
        # The SDK seals with the chat's key; the chat's client opens it with its shared secret.
        sdk = api(server, CHAT, encryption_master_key_base64=CHAT["encryption_master_key_base64"])
        await asyncio.to_thread(sdk.trigger, name, "statement", {"amount": 5})
        frame = await expect(chat.ws, "statement")
        sealed = frame["data"]
        plain = SecretBox(secret).decrypt(
            base64.b64decode(sealed["ciphertext"]), base64.b64decode(sealed["nonce"])
        )
        assert json.loads(plain) == {"amount": 5}
