"""Pusher protocol 7 on ``/app/{key}``: raw WebSocket frames against real daphne and uvicorn processes."""

from __future__ import annotations

import asyncio
import json
import re

import pusher
import pytest
import websockets

from tests.integration import wsclient
from tests.integration.pusher_client import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    PUSHER_ENV,
    PusherSocket,
    channel_auth,
    closed_with,
    expect,
    nothing,
    recv,
    send,
    user_auth,
)
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration


def start(migrated_db_path, tmp_path_factory, kind="daphne", **env):
    return ServerProcess(
        kind,
        env={"DATABASE_PATH": str(migrated_db_path), **PUSHER_ENV, **env},
        log_path=tmp_path_factory.mktemp("pusher") / f"{kind}.log",
    ).start()


@pytest.fixture(params=["daphne", "uvicorn", "uvicorn-front"], scope="module")
def server(request, migrated_db_path, tmp_path_factory):
    srv = start(migrated_db_path, tmp_path_factory, request.param)
    yield srv
    srv.stop()
    if request.session.testsfailed:
        print(srv.log_tail(100))


def api(server) -> pusher.Pusher:
    return pusher.Pusher(
        app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, host="127.0.0.1", port=server.port, ssl=False
    )


async def trigger(server, channels, event, data, socket_id=None):
    await asyncio.to_thread(api(server).trigger, channels, event, data, socket_id)


# -- connection ----------------------------------------------------------------------------
async def test_connection_established_is_double_encoded(server):
    async with websockets.connect(server.ws_url(f"/app/{APP_KEY}?protocol=7&client=js&version=8.4.0")) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["event"] == "pusher:connection_established"
        assert isinstance(frame["data"], str)
        data = json.loads(frame["data"])
        assert re.fullmatch(r"\d+\.\d+", data["socket_id"])
        assert isinstance(data["activity_timeout"], int) and data["activity_timeout"] > 0


async def test_unknown_app_key_gets_4001(server):
    async with websockets.connect(server.ws_url("/app/nope?protocol=7")) as ws:
        code, frames = await closed_with(ws)
    assert code == 4001
    assert frames[0]["event"] == "pusher:error" and frames[0]["data"]["code"] == 4001


async def test_unsupported_protocol_version_gets_4007(server):
    async with websockets.connect(server.ws_url(f"/app/{APP_KEY}?protocol=3")) as ws:
        code, frames = await closed_with(ws)
    assert code == 4007 and frames[0]["data"]["code"] == 4007


async def test_ping_pong(server):
    async with PusherSocket(server) as ps:
        await send(ps.ws, "pusher:ping")
        assert (await recv(ps.ws))["event"] == "pusher:pong"


async def test_malformed_frames_get_pusher_error_without_closing(server):
    async with PusherSocket(server) as ps:
        for text in ("not json", "[1]", '{"data": {}}'):
            await ps.ws.send(text)
            frame = await recv(ps.ws)
            assert frame["event"] == "pusher:error" and frame["data"]["code"] is None
        await send(ps.ws, "pusher:ping")
        assert (await recv(ps.ws))["event"] == "pusher:pong"


# -- subscriptions ---------------------------------------------------------------------------
async def test_public_channel_receives_api_events_double_encoded(server):
    async with PusherSocket(server) as ps:
        ack = await ps.subscribe("general")
        assert ack["event"] == "pusher_internal:subscription_succeeded" and ack["raw_data"] == "{}"
        await trigger(server, ["general"], "news", {"n": 1, "text": "héllo"})
        frame = await expect(ps.ws, "news")
        assert frame["channel"] == "general"
        assert isinstance(frame["raw_data"], str) and frame["data"] == {"n": 1, "text": "héllo"}


async def test_private_channel_needs_a_valid_signature(server):
    async with PusherSocket(server) as ps:
        missing = await ps.subscribe("private-user.5", sign=False)
        assert missing["event"] == "pusher:subscription_error" and missing["data"]["status"] == 401
        forged = await ps.subscribe("private-user.5", auth=f"{APP_KEY}:{'0' * 64}")
        assert forged["event"] == "pusher:subscription_error" and forged["data"]["status"] == 401
        wrong_socket = await ps.subscribe("private-user.5", auth=channel_auth("1.1", "private-user.5"))
        assert wrong_socket["event"] == "pusher:subscription_error"
        ok = await ps.subscribe("private-user.5")
        assert ok["event"] == "pusher_internal:subscription_succeeded"
        # One channel, one name: the server-side name is "user.5"; this client sees its own name.
        await trigger(server, ["user.5"], "order.shipped", {"id": 9})
        frame = await expect(ps.ws, "order.shipped")
        assert frame["channel"] == "private-user.5" and frame["data"] == {"id": 9}


async def test_private_name_without_prefix_is_refused(server):
    async with PusherSocket(server) as ps:
        frame = await ps.subscribe("user.5")
        assert frame["event"] == "pusher:subscription_error" and frame["data"]["status"] == 403
        assert "private-user.5" in frame["data"]["error"]


async def test_encrypted_channels_are_refused_without_a_master_key(server):
    # This server has no PUSHER_ENCRYPTION_MASTER_KEY_BASE64 (tests/js/encrypted.test.mjs has one).
    async with PusherSocket(server) as ps:
        frame = await ps.subscribe("private-encrypted-user.5")
        assert frame["event"] == "pusher:subscription_error" and frame["data"]["status"] == 403
        assert "PUSHER_ENCRYPTION_MASTER_KEY_BASE64" in frame["data"]["error"]


async def test_unsubscribe_stops_events(server):
    async with PusherSocket(server) as ps:
        await ps.subscribe("announcements")
        await send(ps.ws, "pusher:unsubscribe", {"channel": "announcements"})
        await send(ps.ws, "pusher:ping")
        await expect(ps.ws, "pusher:pong")  # the unsubscribe was processed before the ping
        await trigger(server, ["announcements"], "news", {})
        await nothing(ps.ws)


async def test_presence_members_and_first_last_connection_events(server):
    channel = "presence-chat.77"
    async with PusherSocket(server) as alice, PusherSocket(server) as bob, PusherSocket(server) as bob2:
        ack = await alice.join(channel, "1", {"name": "Alice"})
        assert ack["event"] == "pusher_internal:subscription_succeeded"
        assert ack["data"] == {"presence": {"ids": ["1"], "hash": {"1": {"name": "Alice"}}, "count": 1}}
        ack = await bob.join(channel, "2", {"name": "Bob"})
        assert ack["data"]["presence"]["count"] == 2 and set(ack["data"]["presence"]["ids"]) == {"1", "2"}
        added = await expect(alice.ws, "pusher_internal:member_added")
        assert added["channel"] == channel and added["data"] == {"user_id": "2", "user_info": {"name": "Bob"}}
        # Bob's second socket: no member_added (not his first connection).
        await bob2.join(channel, "2", {"name": "Bob"})
        await nothing(alice.ws)
        await bob2.ws.close()
        await nothing(alice.ws)  # not his last connection either
        await bob.ws.close()
        removed = await expect(alice.ws, "pusher_internal:member_removed")
        assert removed["data"] == {"user_id": "2"}


async def test_presence_needs_channel_data(server):
    async with PusherSocket(server) as ps:
        frame = await ps.subscribe("presence-chat.1", auth=channel_auth(ps.socket_id, "presence-chat.1"))
        assert frame["event"] == "pusher:subscription_error" and frame["data"]["status"] == 400


# -- client events ---------------------------------------------------------------------------
async def test_client_events_private_not_echoed(server):
    async with PusherSocket(server) as a, PusherSocket(server) as b:
        await a.subscribe("private-user.8")
        await b.subscribe("private-user.8")
        await send(a.ws, "client-typing", {"who": "a"}, channel="private-user.8")
        frame = await expect(b.ws, "client-typing")
        assert (
            frame["channel"] == "private-user.8" and frame["data"] == {"who": "a"} and "user_id" not in frame
        )
        await nothing(a.ws)


async def test_client_events_on_presence_carry_user_id(server):
    async with PusherSocket(server) as a, PusherSocket(server) as b:
        await a.join("presence-chat.9", "11")
        await b.join("presence-chat.9", "12")
        await send(a.ws, "client-typing", {"x": 1}, channel="presence-chat.9")
        frame = await expect(b.ws, "client-typing")
        assert frame["user_id"] == "11" and frame["data"] == {"x": 1}


async def test_client_events_refused_on_public_and_unsubscribed_channels(server):
    async with PusherSocket(server) as ps:
        await ps.subscribe("general")
        for channel in ("general", "private-user.1"):
            await send(ps.ws, "client-x", {}, channel=channel)
            frame = await expect(ps.ws, "pusher:error")
            assert frame["data"]["code"] is None


async def test_client_event_rate_limit_gives_4301(server):
    async with PusherSocket(server) as a:
        await a.subscribe("private-user.3")
        for i in range(15):  # the default limit is 10 per second
            await send(a.ws, "client-spam", {"i": i}, channel="private-user.3")
        frame = await expect(a.ws, "pusher:error")
        assert frame["data"]["code"] == 4301
        await send(a.ws, "pusher:ping")
        await expect(a.ws, "pusher:pong")  # still connected


# -- user authentication ---------------------------------------------------------------------
async def test_signin_and_server_to_user_events(server):
    async with PusherSocket(server) as ps:
        user_data = json.dumps({"id": "42", "user_info": {"name": "Zed"}})
        await send(
            ps.ws, "pusher:signin", {"auth": user_auth(ps.socket_id, user_data), "user_data": user_data}
        )
        ok = await expect(ps.ws, "pusher:signin_success")
        assert ok["data"]["user_data"] == user_data
        ack = await ps.subscribe("#server-to-user-42")  # what pusher-js does next
        assert ack["event"] == "pusher_internal:subscription_succeeded"
        await asyncio.to_thread(api(server).send_to_user, "42", "hello", {"a": 1})
        frame = await expect(ps.ws, "hello")
        assert frame["channel"] == "#server-to-user-42" and frame["data"] == {"a": 1}


async def test_server_to_user_channel_needs_signin(server):
    async with PusherSocket(server) as ps:
        frame = await ps.subscribe("#server-to-user-42")
        assert frame["event"] == "pusher:subscription_error" and frame["data"]["status"] == 403


async def test_bad_signin_closes_with_4009(server):
    async with PusherSocket(server) as ps:
        user_data = json.dumps({"id": "42"})
        await send(ps.ws, "pusher:signin", {"auth": user_auth("1.2", user_data), "user_data": user_data})
        code, frames = await closed_with(ps.ws)
    assert code == 4009 and frames[-1]["event"] == "pusher:error" and frames[-1]["data"]["code"] == 4009


async def test_terminate_user_connections(server):
    async with PusherSocket(server) as ps:
        user_data = json.dumps({"id": "77"})
        await send(
            ps.ws, "pusher:signin", {"auth": user_auth(ps.socket_id, user_data), "user_data": user_data}
        )
        await expect(ps.ws, "pusher:signin_success")
        await asyncio.to_thread(api(server).terminate_user_connections, "77")
        code, frames = await closed_with(ps.ws)
    assert code == 4009 and frames[-1]["data"]["code"] == 4009


# -- one hub for both protocols ----------------------------------------------------------------
async def test_native_and_pusher_clients_receive_the_same_broadcast(server):
    token = wsclient.make_token(5)
    async with (
        PusherSocket(server) as ps,
        await wsclient.connect(server.ws_url(f"/ws?auth_token={token}")) as native,
    ):
        await wsclient.expect(native, "connected")
        assert (await wsclient.subscribe(native, "user.5"))["event"] == "subscribed"
        await ps.subscribe("private-user.5")
        await trigger(server, ["private-user.5"], "invoice.paid", {"total": 12})
        pusher_frame = await expect(ps.ws, "invoice.paid")
        native_frame = await wsclient.expect(native, "invoice.paid")
        assert pusher_frame["data"] == native_frame["data"] == {"total": 12}
        assert native_frame["channel"] == "user.5" and pusher_frame["channel"] == "private-user.5"
        # A native whisper reaches the Pusher client as a client event, and the other way round.
        await native.send(
            json.dumps({"action": "whisper", "channel": "user.5", "event": "typing", "data": {"n": 1}})
        )
        whisper = await expect(ps.ws, "client-typing")
        assert whisper["data"] == {"n": 1}
        await send(ps.ws, "client-typing", {"n": 2}, channel="private-user.5")
        back = await wsclient.expect(native, "client-typing")
        assert back["data"] == {"n": 2}


async def test_to_others_excludes_the_pusher_socket(server):
    async with PusherSocket(server) as a, PusherSocket(server) as b:
        await a.subscribe("general")
        await b.subscribe("general")
        await trigger(server, ["general"], "ping", {"x": 1}, socket_id=a.socket_id)
        await expect(b.ws, "ping")
        await nothing(a.ws)


# -- limits and liveness (their own servers) ---------------------------------------------------
async def test_over_capacity_4100_and_over_quota_4004(migrated_db_path, tmp_path_factory):
    srv = start(migrated_db_path, tmp_path_factory, BROADCAST_MAX_CONNECTIONS="2", PUSHER_MAX_CONNECTIONS="2")
    try:
        async with await wsclient.connect(srv.ws_url("/ws")) as native, PusherSocket(srv):
            await wsclient.expect(native, "connected")
            async with websockets.connect(srv.ws_url(f"/app/{APP_KEY}?protocol=7")) as ws:
                code, frames = await closed_with(ws)
            assert code == 4100 and frames[-1]["data"]["code"] == 4100
        async with PusherSocket(srv), PusherSocket(srv):
            async with websockets.connect(srv.ws_url(f"/app/{APP_KEY}?protocol=7")) as ws:
                code, frames = await closed_with(ws)
            assert code == 4004 and frames[-1]["data"]["code"] == 4004
    finally:
        srv.stop()


async def test_silent_client_is_pinged_then_closed_with_4201(migrated_db_path, tmp_path_factory):
    srv = start(migrated_db_path, tmp_path_factory, BROADCAST_ACTIVITY_TIMEOUT="2")
    try:
        async with PusherSocket(srv) as ps:
            assert ps.established["data"]["activity_timeout"] == 2
            code, frames = await closed_with(ps.ws, timeout=10)
        assert [f["event"] for f in frames].count("pusher:ping") >= 1
        assert code == 4201 and frames[-1]["data"]["code"] == 4201
        async with PusherSocket(srv) as ps:  # a client that answers pings stays
            for _ in range(3):
                await expect(ps.ws, "pusher:ping", timeout=5)
                await send(ps.ws, "pusher:pong")
    finally:
        srv.stop()


@pytest.mark.parametrize("kind", ["daphne", "uvicorn", "uvicorn-front"])
async def test_shutdown_sends_4200(migrated_db_path, tmp_path_factory, kind):
    srv = start(migrated_db_path, tmp_path_factory, kind)
    try:
        async with PusherSocket(srv) as ps:
            await asyncio.to_thread(srv.stop)
            code, frames = await closed_with(ps.ws)
        assert code == 4200, (code, frames)
        assert frames[-1]["event"] == "pusher:error" and frames[-1]["data"]["code"] == 4200
    finally:
        srv.stop()


async def test_server_to_user_channel_is_private_for_native_clients_too(server):
    async with await wsclient.connect(server.ws_url("/ws")) as anonymous:
        await wsclient.expect(anonymous, "connected")
        refused = await wsclient.subscribe(anonymous, "#server-to-user-5")
        assert refused["event"] == "error"
    token = wsclient.make_token(5)
    async with await wsclient.connect(server.ws_url(f"/ws?auth_token={token}")) as owner:
        await wsclient.expect(owner, "connected")
        assert (await wsclient.subscribe(owner, "#server-to-user-5"))["event"] == "subscribed"
        await asyncio.to_thread(api(server).send_to_user, "5", "note", {"k": 1})
        assert (await wsclient.expect(owner, "note"))["data"] == {"k": 1}
