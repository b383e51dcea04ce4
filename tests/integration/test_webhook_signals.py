"""The webhook lifecycle as Django signals, in-process (no webhook URL configured)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from django_broadcasting import signals, webhooks
from django_broadcasting.auth.middleware import BroadcastAuthMiddlewareStack
from django_broadcasting.server.hub import get_hub, reset_hub
from django_broadcasting.server.routing import websocket_urlpatterns
from tests.integration.wsclient import make_token

SECRET = "webhook-signals-secret-0123456789abcdef"


@pytest.fixture
def app(settings):
    settings.BROADCASTING = {"JWT_SECRET": SECRET}
    reset_hub()
    yield BroadcastAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    reset_hub()


async def until(predicate, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


@pytest.mark.django_db(transaction=True)
async def test_channel_lifecycle_signals(app):
    seen: list[tuple[str, str, dict]] = []

    def recorder(name):
        def receiver(sender, **kwargs):
            seen.append((name, kwargs["channel"], kwargs["event"]))

        return receiver

    receivers = {
        name: recorder(name) for name in ("channel_occupied", "channel_vacated", "client_event", "cache_miss")
    }
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, weak=False)
    try:
        comm = WebsocketCommunicator(app, f"/ws?auth_token={make_token(3, secret=SECRET)}")
        connected, _ = await comm.connect()
        assert connected
        assert json.loads(await comm.receive_from())["event"] == "connected"
        await comm.send_to(json.dumps({"action": "subscribe", "channel": "presence.chat.1"}))
        assert json.loads(await comm.receive_from())["event"] == "subscribed"
        await until(lambda: any(name == "channel_occupied" for name, _, _ in seen))
        await comm.send_to(
            json.dumps(
                {"action": "whisper", "channel": "presence.chat.1", "event": "typing", "data": {"a": 1}}
            )
        )
        await until(lambda: any(name == "client_event" for name, _, _ in seen))
        await webhooks.acache_miss("cache-prices")
        await comm.disconnect()
        await until(lambda: any(name == "channel_vacated" for name, _, _ in seen))
        await get_hub().stop()
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver)
    by_name = {name: (channel, event) for name, channel, event in seen}
    assert by_name["channel_occupied"] == (
        "presence.chat.1",
        {"name": "channel_occupied", "channel": "presence-chat.1"},
    )
    assert by_name["channel_vacated"][1] == {"name": "channel_vacated", "channel": "presence-chat.1"}
    channel, event = by_name["client_event"]
    assert channel == "presence.chat.1"
    assert event["event"] == "client-typing" and event["data"] == '{"a":1}' and event["user_id"] == "3"
    assert by_name["cache_miss"] == ("cache-prices", {"name": "cache_miss", "channel": "cache-prices"})
    assert [name for name, _, _ in seen].count("channel_occupied") == 1


@pytest.mark.django_db(transaction=True)
async def test_cache_miss_webhook_from_code_in_the_server_process(settings):
    from tests.integration.webhook_receiver import WebhookReceiver, validated

    with WebhookReceiver() as hooks:
        settings.BROADCASTING = {
            "JWT_SECRET": SECRET,
            "PUSHER_APP_KEY": "test-key",
            "PUSHER_APP_ID": "123456",
            "PUSHER_APP_SECRET": "test-secret-0123456789",
            "PUSHER_WEBHOOK_URL": [hooks.url],
            "PUSHER_WEBHOOK_EVENTS": ["cache_miss"],
            "WEBHOOK_BATCH_DELAY": 0,
        }
        reset_hub()
        hub = get_hub()
        await hub.start()
        try:
            await webhooks.acache_miss("cache-prices")
            webhooks.cache_miss("presence.cache-room")  # fire-and-forget twin
            events = await asyncio.to_thread(hooks.wait_for, lambda ev: len(ev) == 2, 5, "two cache_miss")
            assert webhooks.webhook_stats()["events_queued"] == 2
        finally:
            await hub.stop()
            reset_hub()
    assert sorted(events, key=lambda e: e["channel"]) == [
        {"name": "cache_miss", "channel": "cache-prices"},
        {"name": "cache_miss", "channel": "presence-cache-room"},
    ]
    assert all(validated(d) is not None for d in hooks.deliveries)
    assert webhooks.webhook_stats() is None  # stopped: nothing left running
