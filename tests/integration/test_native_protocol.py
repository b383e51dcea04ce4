"""The WebSocket protocol against real daphne and uvicorn processes over real sockets."""

from __future__ import annotations

import json

import pytest
import websockets

from django_broadcasting.http.trigger import apost
from django_broadcasting.messages import Message
from tests.integration.wsclient import connect, expect, make_token, nothing, recv, subscribe

pytestmark = pytest.mark.integration


@pytest.fixture(params=["daphne", "uvicorn", "uvicorn-front"], scope="module")
def server(request):
    """daphne, uvicorn (websockets-sansio) and uvicorn on this project's WebSocket protocol."""
    return request.getfixturevalue(f"{request.param.replace('-', '_')}_server")


async def publish(server, channel, event, data=None, socket_id=None):
    await apost(
        Message.for_channels([channel], event, data, socket_id=socket_id),
        url=server.url("/api/broadcast/events"),
    )


async def test_ping_is_answered_with_pong(server):
    """The protocol's basic round trip."""
    async with await connect(server.ws_url("/ws")) as ws:
        hello = await recv(ws)
        assert hello["event"] == "connected" and hello["data"]["socket_id"]
        await ws.send(json.dumps({"action": "ping", "data": {"test": True}}))
        pong = await recv(ws)
        assert pong["event"] == "pong" and pong["data"] == {"test": True}


@pytest.mark.parametrize("path", ["/ws?channel=general", "/ws/general"])
async def test_public_channel_from_url_receives_broadcast(server, path):
    async with await connect(server.ws_url(path)) as ws:
        await expect(ws, "connected")
        ack = await expect(ws, "subscribed")
        assert ack["channel"] == "general"
        await publish(server, "general", "announcement", {"message": "hello", "n": 1})
        frame = await expect(ws, "announcement")
        # The four fields, plus the history id (HISTORY_ENABLED is on by default).
        assert set(frame) == {"channel", "event", "data", "timestamp", "id"}
        assert frame["channel"] == "general" and frame["data"] == {"message": "hello", "n": 1}
        assert frame["timestamp"].endswith("Z")


async def test_private_channel_in_url_without_token_is_refused_with_403(server):
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(server.ws_url("/ws?channel=user.5"))
    assert info.value.response.status_code == 403


async def test_bad_or_expired_token_is_refused_with_403(server):
    for token in (
        "not-a-jwt",
        make_token(5, secret="wrong-secret-wrong-secret-wrong-secret"),
        make_token(5, ttl=-60),
    ):
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(server.ws_url(f"/ws?auth_token={token}"))
        assert info.value.response.status_code == 403


async def test_token_in_authorization_header(server):
    headers = {"Authorization": f"Bearer {make_token(7)}"}
    async with await connect(server.ws_url("/ws?channel=user.7"), additional_headers=headers) as ws:
        assert (await expect(ws, "subscribed"))["channel"] == "user.7"


async def test_private_user_channel_is_only_for_its_owner(server):
    async with await connect(server.ws_url(f"/ws?auth_token={make_token(5)}")) as ws:
        await expect(ws, "connected")
        assert (await subscribe(ws, "general"))["event"] == "subscribed"
        ok = await subscribe(ws, "user.5")
        assert ok["event"] == "subscribed" and ok["data"]["type"] == "private"
        refused = await subscribe(ws, "user.6")
        assert refused["event"] == "error" and refused["data"]["code"] == 4030
        assert refused["channel"] == "user.6"
        # The refusal left the other subscriptions alone.
        await publish(server, "user.5", "notification", {"title": "t"})
        assert (await expect(ws, "notification"))["channel"] == "user.5"
        await publish(server, "general", "news")
        await expect(ws, "news")


async def test_admin_channel_needs_admin_role(server):
    async with await connect(server.ws_url(f"/ws?auth_token={make_token(1, roles=['user'])}")) as ws:
        await expect(ws, "connected")
        assert (await subscribe(ws, "admin"))["data"]["code"] == 4030
    async with await connect(server.ws_url(f"/ws?auth_token={make_token(2, roles=['admin'])}")) as ws:
        await expect(ws, "connected")
        assert (await subscribe(ws, "admin"))["event"] == "subscribed"


async def test_unsubscribe_stops_delivery(server):
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        await ws.send(json.dumps({"action": "unsubscribe", "channel": "general"}))
        assert (await expect(ws, "unsubscribed"))["channel"] == "general"
        await publish(server, "general", "after")
        await nothing(ws)
        await ws.send(json.dumps({"action": "unsubscribe", "channel": "general"}))
        assert (await expect(ws, "error"))["data"]["code"] == 4004


async def test_bad_frames_get_error_frames_and_leave_the_connection_working(server):
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        cases = [
            ("{not json", 4000),
            ("[1, 2]", 4000),
            (json.dumps({"channel": "x"}), 4002),
            (json.dumps({"action": "fly"}), 4001),
            (json.dumps({"action": "subscribe"}), 4002),
            (json.dumps({"action": "subscribe", "channel": "bad name!"}), 4003),
            (json.dumps({"action": "whisper", "channel": "general"}), 4002),
            (json.dumps({"action": "ping", "data": "x" * 20000}), 4009),
        ]
        for text, code in cases:
            await ws.send(text)
            frame = await expect(ws, "error")
            assert frame["data"]["code"] == code, (text[:40], frame)
            assert frame["data"]["message"]
        await ws.send(b"\x00\x01binary")
        assert (await expect(ws, "error"))["data"]["code"] == 4000
        await publish(server, "general", "still-here")
        await expect(ws, "still-here")


async def test_presence_members_join_and_leave_once_per_user(server):
    alice, bob = make_token(101, name="Alice"), make_token(102, name="Bob")
    channel = "presence.chat.42"
    async with await connect(server.ws_url(f"/ws?auth_token={alice}")) as a:
        await expect(a, "connected")
        first = await subscribe(a, channel)
        assert [m["id"] for m in first["data"]["members"]] == ["101"]
        async with await connect(server.ws_url(f"/ws?auth_token={bob}")) as b1:
            await expect(b1, "connected")
            joined = await subscribe(b1, channel)
            assert sorted(m["id"] for m in joined["data"]["members"]) == ["101", "102"]
            added = await expect(a, "member_added", channel=channel)
            assert added["data"]["id"] == "102" and added["data"]["info"].get("name") == "Bob"
            # A second tab of the same user is not a second member.
            async with await connect(server.ws_url(f"/ws?auth_token={bob}")) as b2:
                await expect(b2, "connected")
                tab = await subscribe(b2, channel)
                assert tab["data"]["count"] == 2
                await nothing(a)
            await nothing(a)  # Bob still has a tab open
        removed = await expect(a, "member_removed", channel=channel)
        assert removed["data"]["id"] == "102"


async def test_presence_needs_authentication(server):
    async with await connect(server.ws_url("/ws")) as ws:
        await expect(ws, "connected")
        assert (await subscribe(ws, "presence.chat.1"))["data"]["code"] == 4030


async def test_whisper_reaches_the_others_only(server):
    channel = "presence.chat.7"
    async with (
        await connect(server.ws_url(f"/ws?auth_token={make_token(1)}")) as a,
        await connect(server.ws_url(f"/ws?auth_token={make_token(2)}")) as b,
    ):
        for ws in (a, b):
            await expect(ws, "connected")
            await subscribe(ws, channel)
        await expect(a, "member_added")
        await a.send(
            json.dumps({"action": "whisper", "channel": channel, "event": "typing", "data": {"on": True}})
        )
        got = await expect(b, "client-typing")
        assert got["data"] == {"on": True} and got["channel"] == channel and got["user_id"] == "1"
        await nothing(a)


async def test_whisper_on_public_channel_is_refused(server):
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        await ws.send(json.dumps({"action": "whisper", "channel": "general", "event": "typing"}))
        assert (await expect(ws, "error"))["data"]["code"] == 4031


async def test_to_others_skips_the_sender_socket(server):
    async with (
        await connect(server.ws_url("/ws?channel=general")) as a,
        await connect(server.ws_url("/ws?channel=general")) as b,
    ):
        socket_a = (await expect(a, "connected"))["data"]["socket_id"]
        await expect(a, "subscribed")
        await expect(b, "subscribed")
        await publish(server, "general", "edited", {"x": 1}, socket_id=socket_a)
        await expect(b, "edited")
        await nothing(a)
