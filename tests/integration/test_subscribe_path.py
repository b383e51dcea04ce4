"""Every subscription of either protocol goes through one path: limits and the ``subscribed`` signal apply.

A Pusher socket's ``#server-to-user-<id>`` channel (joined by ``pusher:signin`` and by the
``pusher:subscribe`` pusher-js sends next) used to be subscribed straight on the hub: it did not
count against ``MAX_SUBSCRIPTIONS`` and sent no ``subscribed`` signal.
"""

from __future__ import annotations

import json

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from django_broadcasting import signals
from django_broadcasting.auth.middleware import BroadcastAuthMiddlewareStack
from django_broadcasting.pusher_apps import default_app as get_app
from django_broadcasting.pusher_signing import sign_user
from django_broadcasting.server.hub import get_hub, reset_hub
from django_broadcasting.server.routing import websocket_urlpatterns


@pytest.fixture
def app(settings):
    settings.BROADCASTING = {"MAX_SUBSCRIPTIONS": 2}
    reset_hub()
    yield BroadcastAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    reset_hub()


async def receive(comm: WebsocketCommunicator) -> dict:
    frame = json.loads(await comm.receive_from(timeout=5))
    if isinstance(frame.get("data"), str) and frame["data"].startswith("{"):
        frame["data"] = json.loads(frame["data"])
    return frame


async def connect(app) -> tuple[WebsocketCommunicator, str]:
    comm = WebsocketCommunicator(app, f"/app/{get_app().key}?protocol=7")
    connected, _ = await comm.connect()
    assert connected
    established = await receive(comm)
    assert established["event"] == "pusher:connection_established"
    return comm, established["data"]["socket_id"]


async def signin(comm: WebsocketCommunicator, socket_id: str, user_id: str) -> dict:
    user_data = json.dumps({"id": user_id})
    await comm.send_to(
        json.dumps(
            {
                "event": "pusher:signin",
                "data": {"auth": sign_user(socket_id, user_data), "user_data": user_data},
            }
        )
    )
    return await receive(comm)


async def subscribe(comm: WebsocketCommunicator, channel: str) -> dict:
    await comm.send_to(json.dumps({"event": "pusher:subscribe", "data": {"channel": channel}}))
    return await receive(comm)


def connection(socket_id: str):
    return get_hub().connections[socket_id]


@pytest.mark.django_db(transaction=True)
async def test_server_to_user_channel_fires_subscribed_once(app):
    seen: list[str] = []

    async def on_subscribed(sender, socket_id, channel, **kwargs):
        seen.append(channel)

    signals.subscribed.connect(on_subscribed)
    try:
        comm, socket_id = await connect(app)
        assert (await signin(comm, socket_id, "42"))["event"] == "pusher:signin_success"
        ack = await subscribe(comm, "#server-to-user-42")  # what pusher-js does next
        assert ack["event"] == "pusher_internal:subscription_succeeded"
        assert [c for c in seen if c.endswith("#server-to-user-42")] == [
            get_app().hub_name("#server-to-user-42")
        ]
        await comm.disconnect()
    finally:
        signals.subscribed.disconnect(on_subscribed)


@pytest.mark.django_db(transaction=True)
async def test_server_to_user_channel_counts_toward_max_subscriptions(app):
    comm, socket_id = await connect(app)
    for name in ("one", "two"):
        assert (await subscribe(comm, name))["event"] == "pusher_internal:subscription_succeeded"
    # Signed in, but the user's channel would be a third subscription: refused like any other.
    assert (await signin(comm, socket_id, "42"))["event"] == "pusher:signin_success"
    refused = await subscribe(comm, "#server-to-user-42")
    assert refused["event"] == "pusher:subscription_error"
    assert refused["data"]["status"] == 400
    assert "Too many subscriptions" in refused["data"]["error"]
    assert len(connection(socket_id).channels) == 2
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_server_to_user_channel_within_the_limit_counts_as_one(app):
    comm, socket_id = await connect(app)
    assert (await signin(comm, socket_id, "7"))["event"] == "pusher:signin_success"
    assert (await subscribe(comm, "#server-to-user-7"))["event"] == "pusher_internal:subscription_succeeded"
    assert (await subscribe(comm, "one"))["event"] == "pusher_internal:subscription_succeeded"
    refused = await subscribe(comm, "two")  # the user's channel took one of the two places
    assert refused["event"] == "pusher:subscription_error"
    assert refused["data"]["status"] == 400
    await comm.disconnect()
