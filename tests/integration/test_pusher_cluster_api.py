"""The Pusher HTTP API answers for the whole cluster: two servers (daphne + uvicorn) over one Redis.

Clients sit on both nodes; the API asked on either node counts subscriptions and presence
members of both, and ``terminate_connections`` closes the user's sockets on both. Driven by the
PyPI ``pusher`` SDK and raw signed requests, against real servers and a real Redis.
"""

from __future__ import annotations

import asyncio
import json

import pusher
import pytest

from tests.integration import wsclient
from tests.integration.pusher_client import (
    APP_ID,
    APP_KEY,
    APP_SECRET,
    PUSHER_ENV,
    PusherSocket,
    closed_with,
    expect,
    send,
    user_auth,
)
from tests.integration.redis_support import redis_env

pytestmark = [pytest.mark.integration, pytest.mark.redis]


@pytest.fixture
def nodes(server_factory, redis_url, redis_prefix):
    env = {**redis_env(redis_url, redis_prefix), **PUSHER_ENV}
    return server_factory("daphne", env=env), server_factory("uvicorn", env=env)


def api(server) -> pusher.Pusher:
    return pusher.Pusher(
        app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, host="127.0.0.1", port=server.port, ssl=False
    )


async def test_channel_counts_and_users_cover_both_nodes(nodes):
    a, b = nodes
    async with (
        PusherSocket(a) as a1,
        PusherSocket(a) as a2,
        PusherSocket(b) as b1,
        PusherSocket(a) as alice,
        PusherSocket(b) as bob,
    ):
        for socket in (a1, a2, b1):
            assert (await socket.subscribe("orders"))["event"] == "pusher_internal:subscription_succeeded"
        await b1.subscribe("private-user.5")
        await alice.join("presence-chat.9", "1", {"name": "Alice"})
        await bob.join("presence-chat.9", "2", {"name": "Bob"})
        for node in (a, b):
            client = api(node)
            # Right after the subscriptions: answered by asking every node, not from old reports.
            listed = await asyncio.to_thread(client.channels_info, None, ["subscription_count"])
            assert listed["channels"]["orders"] == {"subscription_count": 3}
            assert listed["channels"]["private-user.5"] == {"subscription_count": 1}
            assert listed["channels"]["presence-chat.9"] == {"subscription_count": 2}
            one = await asyncio.to_thread(client.channel_info, "orders", ["subscription_count"])
            assert one == {"occupied": True, "subscription_count": 3}
            presence = await asyncio.to_thread(
                client.channel_info, "presence-chat.9", ["user_count", "subscription_count"]
            )
            assert presence == {"occupied": True, "user_count": 2, "subscription_count": 2}
            users = await asyncio.to_thread(client.users_info, "presence-chat.9")
            assert sorted(u["id"] for u in users["users"]) == ["1", "2"]
            only_presence = await asyncio.to_thread(client.channels_info, "presence-", ["user_count"])
            assert only_presence == {"channels": {"presence-chat.9": {"user_count": 2}}}
            empty = await asyncio.to_thread(client.channel_info, "nobody-here", ["subscription_count"])
            assert empty == {"occupied": False, "subscription_count": 0}
        # A socket leaving on one node shows on the other at once.
        await b1.ws.close()
        client = api(a)
        for _ in range(100):
            one = await asyncio.to_thread(client.channel_info, "orders", ["subscription_count"])
            if one["subscription_count"] == 2:
                break
            await asyncio.sleep(0.05)
        assert one == {"occupied": True, "subscription_count": 2}
        listed = await asyncio.to_thread(client.channels_info)
        assert "private-user.5" not in listed["channels"]


async def test_terminate_connections_closes_the_user_on_every_node(nodes):
    a, b = nodes
    user_data = json.dumps({"id": "77"})
    token = wsclient.make_token(77)
    async with (
        PusherSocket(a) as on_a,
        PusherSocket(b) as on_b,
        PusherSocket(a) as bystander,
        await wsclient.connect(a.ws_url(f"/ws?auth_token={token}")) as native,
    ):
        await wsclient.expect(native, "connected")
        for socket in (on_a, on_b):
            await send(
                socket.ws,
                "pusher:signin",
                {"auth": user_auth(socket.socket_id, user_data), "user_data": user_data},
            )
            await expect(socket.ws, "pusher:signin_success")
        await bystander.subscribe("orders")
        # Asked on node b, which then waits for both nodes to close their sockets.
        await asyncio.to_thread(api(b).terminate_user_connections, "77")
        code_a, frames_a = await closed_with(on_a.ws)
        code_b, frames_b = await closed_with(on_b.ws)
        assert code_a == code_b == 4009
        assert frames_a[-1]["event"] == frames_b[-1]["event"] == "pusher:error"
        native_code, _ = await closed_with(native)  # user 77's native socket (the default app's) too
        assert native_code == 4001
        # Other users stay connected.
        await send(bystander.ws, "pusher:ping")
        assert (await expect(bystander.ws, "pusher:pong"))["event"] == "pusher:pong"
