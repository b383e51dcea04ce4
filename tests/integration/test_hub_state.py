"""The hub and presence state hold nothing after many connect/subscribe/disconnect cycles."""

from __future__ import annotations

import json

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from django_broadcasting.auth.middleware import BroadcastAuthMiddlewareStack
from django_broadcasting.server.hub import get_hub, reset_hub
from django_broadcasting.server.routing import websocket_urlpatterns
from tests.integration.wsclient import make_token


@pytest.fixture
def app(settings):
    settings.BROADCASTING = {"JWT_SECRET": "hub-state-secret-0123456789abcdef0123"}
    reset_hub()
    yield BroadcastAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    reset_hub()


async def cycle(app, token: str, channel: str) -> None:
    comm = WebsocketCommunicator(app, f"/ws?auth_token={token}")
    connected, _ = await comm.connect()
    assert connected
    assert json.loads(await comm.receive_from())["event"] == "connected"
    await comm.send_to(json.dumps({"action": "subscribe", "channel": channel}))
    assert json.loads(await comm.receive_from())["event"] == "subscribed"
    await comm.send_to(json.dumps({"action": "subscribe", "channel": "general"}))
    assert json.loads(await comm.receive_from())["event"] == "subscribed"
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_thousand_cycles_leave_nothing_behind(app):
    tokens = [make_token(i, secret="hub-state-secret-0123456789abcdef0123") for i in range(10)]
    for i in range(1000):
        await cycle(app, tokens[i % 10], f"presence.chat.{i % 7}")
    hub = get_hub()
    assert hub.connections == {}
    assert hub.subscribers == {}
    assert hub.presence.count() == 0
    assert hub.presence.snapshot() == {}
    assert hub._locks == {}
    assert hub.connections_total == 1000
    await hub.stop()


@pytest.mark.django_db(transaction=True)
async def test_lifecycle_signals_are_sent(app):
    from django_broadcasting import signals

    seen = []

    def recorder(name):
        def receiver(sender, **kwargs):
            seen.append((name, kwargs.get("channel"), kwargs.get("user_id")))

        return receiver

    receivers = {
        name: recorder(name)
        for name in (
            "connection_opened",
            "connection_closed",
            "subscribed",
            "unsubscribed",
            "member_joined",
            "member_left",
        )
    }
    for name, func in receivers.items():
        getattr(signals, name).connect(func)
    try:
        await cycle(app, make_token(3, secret="hub-state-secret-0123456789abcdef0123"), "presence.chat.1")
    finally:
        for name, func in receivers.items():
            getattr(signals, name).disconnect(func)
    names = [s[0] for s in seen]
    assert names[0] == "connection_opened" and names[-1] == "connection_closed"
    assert ("member_joined", "presence.chat.1", "3") in seen
    assert ("member_left", "presence.chat.1", "3") in seen
    assert ("subscribed", "presence.chat.1", None) in seen and ("subscribed", "general", None) in seen
