"""Webhooks in Pusher's format from real servers to a real HTTP receiver, checked by the ``pusher`` SDK.

Clients are raw Pusher protocol 7 sockets and native ``/ws`` sockets; the receiver is an
``http.server`` on a free port; every accepted request must pass the PyPI ``pusher`` package's
``validate_webhook``. With Redis, two servers (daphne and uvicorn) share one cluster: occupied
and vacated go out once however many nodes hold the channel.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration import wsclient
from tests.integration.pusher_client import APP_KEY, PUSHER_ENV, PusherSocket, expect, send
from tests.integration.redis_support import redis_env
from tests.integration.webhook_receiver import WebhookReceiver, validated
from tests.servers import free_port

pytestmark = [pytest.mark.integration]


def hook_env(receiver_url: str, **extra: str) -> dict[str, str]:
    return {**PUSHER_ENV, "PUSHER_WEBHOOK_URL": receiver_url, **extra}


async def wait_events(hooks: WebhookReceiver, predicate, timeout: float, message: str):
    return await asyncio.to_thread(hooks.wait_for, predicate, timeout, message)


def metrics(server) -> dict[str, dict]:
    samples: dict[str, dict] = {}
    text = httpx.get(server.url("/metrics"), timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def test_lifecycle_of_a_presence_channel_in_pushers_format(server_factory):
    with WebhookReceiver() as hooks:
        server = server_factory("daphne", env=hook_env(hooks.url))
        async with PusherSocket(server) as alice:
            joined = time.monotonic()
            ack = await alice.join("presence-chat.1", "1", {"name": "Alice"})
            assert ack["event"] == "pusher_internal:subscription_succeeded"
            await wait_events(
                hooks,
                lambda ev: {"channel_occupied", "member_added"} <= {e["name"] for e in ev},
                5,
                "channel_occupied and member_added within 5 s",
            )
            assert time.monotonic() - joined < 5
            assert hooks.named("channel_occupied") == [
                {"name": "channel_occupied", "channel": "presence-chat.1"}
            ]
            assert hooks.named("member_added") == [
                {"name": "member_added", "channel": "presence-chat.1", "user_id": "1"}
            ]

            async with PusherSocket(server) as bob:
                await bob.join("presence-chat.1", "2", {"name": "Bob"})
                await expect(alice.ws, "pusher_internal:member_added")
                await send(bob.ws, "client-typing", {"typing": True}, channel="presence-chat.1")
                await expect(alice.ws, "client-typing")
                events = await wait_events(
                    hooks, lambda ev: any(e["name"] == "client_event" for e in ev), 5, "client_event"
                )
                (client_event,) = [e for e in events if e["name"] == "client_event"]
                assert client_event == {
                    "name": "client_event",
                    "channel": "presence-chat.1",
                    "event": "client-typing",
                    "data": json.dumps({"typing": True}, separators=(",", ":")),
                    "socket_id": bob.socket_id,
                    "user_id": "2",
                }
            await wait_events(
                hooks,
                lambda ev: {"name": "member_removed", "channel": "presence-chat.1", "user_id": "2"} in ev,
                5,
                "member_removed of Bob",
            )
            assert hooks.named("channel_vacated") == []  # Alice is still there
        left = time.monotonic()
        await wait_events(hooks, lambda ev: any(e["name"] == "channel_vacated" for e in ev), 10, "vacated")
        assert time.monotonic() - left < 10
        assert hooks.named("channel_vacated") == [{"name": "channel_vacated", "channel": "presence-chat.1"}]
        assert [e["user_id"] for e in hooks.named("member_removed")] == ["2", "1"]

    assert hooks.deliveries
    for delivery in hooks.deliveries:
        assert delivery.headers["X-Pusher-Key"] == APP_KEY
        assert delivery.headers["Content-Type"] == "application/json"
        checked = validated(delivery)
        assert checked is not None, delivery
        assert set(checked) == {"time_ms", "events"} and isinstance(checked["time_ms"], int)
    # A body changed after signing does not validate: the signature covers the raw bytes.
    tampered = hooks.deliveries[0]
    tampered.body = tampered.body.replace(b"presence-chat.1", b"presence-chat.2")
    assert validated(tampered) is None


async def test_private_client_events_and_native_whispers(server_factory):
    with WebhookReceiver() as hooks:
        server = server_factory("daphne", env=hook_env(hooks.url, PUSHER_WEBHOOK_EVENTS="client_event"))
        token = wsclient.make_token(5)
        async with (
            PusherSocket(server) as pusher_socket,
            await wsclient.connect(server.ws_url(f"/ws?auth_token={token}")) as native,
        ):
            await wsclient.expect(native, "connected")
            await wsclient.subscribe(native, "user.5")
            ack = await pusher_socket.subscribe("private-user.5")
            assert ack["event"] == "pusher_internal:subscription_succeeded"
            await send(pusher_socket.ws, "client-ping", {"n": 1}, channel="private-user.5")
            await wsclient.expect(native, "client-ping")
            await native.send(
                json.dumps({"action": "whisper", "channel": "user.5", "event": "pong", "data": [2]})
            )
            await expect(pusher_socket.ws, "client-pong")
            events = await wait_events(hooks, lambda ev: len(ev) >= 2, 5, "two client events")
    # PUSHER_WEBHOOK_EVENTS=client_event: nothing else was sent (no occupied, no vacated).
    assert [e["name"] for e in events] == ["client_event", "client_event"]
    first, second = events
    assert first == {
        "name": "client_event",
        "channel": "private-user.5",
        "event": "client-ping",
        "data": '{"n":1}',
        "socket_id": pusher_socket.socket_id,
    }  # no user_id: a private channel
    assert second["channel"] == "private-user.5" and second["event"] == "client-pong"
    assert second["data"] == "[2]" and "user_id" not in second
    assert all(validated(d) is not None for d in hooks.deliveries)


async def test_a_failed_delivery_is_retried_with_the_same_events(server_factory):
    with WebhookReceiver(statuses=[500, 503]) as hooks:
        server = server_factory("uvicorn", env=hook_env(hooks.url))
        async with await wsclient.connect(server.ws_url("/ws?channel=news")) as ws:
            await wsclient.expect(ws, "subscribed")
            await wait_events(hooks, lambda ev: len(ev) >= 1, 30, "the retried channel_occupied")
        assert [d.status for d in hooks.deliveries[:3]] == [500, 503, 200]
        first, second, third = hooks.deliveries[:3]
        assert (
            first.payload["events"]
            == third.payload["events"]
            == [{"name": "channel_occupied", "channel": "news"}]
        )
        assert third.at - first.at < 30  # retried within 30 s (backoff 1 s, then 2 s)
        assert all(validated(d) is not None for d in hooks.deliveries)
        await wait_events(hooks, lambda ev: len(ev) >= 2, 10, "channel_vacated")
        m = await asyncio.to_thread(metrics, server)
    assert m["broadcast_webhook_requests_total"][(("result", "failed"),)] == 2
    assert m["broadcast_webhook_requests_total"][(("result", "ok"),)] == 2
    assert m["broadcast_webhook_events_total"][(("outcome", "sent"),)] == 2
    assert m["broadcast_webhook_events_total"][(("outcome", "dropped"),)] == 0


async def test_a_dead_receiver_costs_bounded_memory_and_drops_are_counted(server_factory):
    dead = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens there
    env = hook_env(
        dead,
        BROADCAST_WEBHOOK_QUEUE_SIZE="3",
        BROADCAST_WEBHOOK_BATCH_SIZE="1",
        BROADCAST_WEBHOOK_TIMEOUT="1",
    )
    server = server_factory("daphne", env=env)
    async with await wsclient.connect(server.ws_url("/ws")) as ws:
        await wsclient.expect(ws, "connected")
        for i in range(10):
            await wsclient.subscribe(ws, f"room.{i}")  # ten channel_occupied events

        def settled() -> bool:
            counts = metrics(server)["broadcast_webhook_events_total"]
            return counts[(("outcome", "queued"),)] == 10

        await asyncio.to_thread(_poll, settled, 10)
        m = await asyncio.to_thread(metrics, server)
    assert m["broadcast_webhook_events_pending"][()] <= 4  # the queue (3) and the request in flight (1)
    assert m["broadcast_webhook_events_total"][(("outcome", "dropped"),)] >= 6
    assert m["broadcast_webhook_requests_total"][(("result", "failed"),)] >= 1
    stats = httpx.get(server.url("/api/broadcast/stats"), timeout=10)
    assert stats.status_code in (200, 401, 403)  # the stats API is staff-only; /metrics carries the figures


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_a_stopping_server_sends_what_it_vacates(server_factory, kind):
    with WebhookReceiver() as hooks:
        server = server_factory(kind, env=hook_env(hooks.url))
        socket = PusherSocket(server)
        await socket.__aenter__()
        await socket.join("presence-shift.1", "9")
        await wait_events(hooks, lambda ev: len(ev) == 2, 5, "occupied and member_added")
        await asyncio.to_thread(server.stop)  # SIGTERM: a graceful stop
        await wait_events(
            hooks,
            lambda ev: hooks.named("channel_vacated") and hooks.named("member_removed"),
            5,
            "vacated and member_removed sent before the process exited",
        )
        try:
            await socket.ws.close()
        except Exception:  # noqa: BLE001 - the server is gone
            pass
    assert hooks.named("channel_vacated") == [{"name": "channel_vacated", "channel": "presence-shift.1"}]
    assert hooks.named("member_removed") == [
        {"name": "member_removed", "channel": "presence-shift.1", "user_id": "9"}
    ]


def _poll(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


# -- several servers over Redis ----------------------------------------------------------------
@pytest.mark.redis
async def test_two_servers_send_occupied_and_vacated_once(server_factory, redis_url, redis_prefix):
    with WebhookReceiver() as hooks:
        env = {**redis_env(redis_url, redis_prefix), **hook_env(hooks.url)}
        a, b = server_factory("daphne", env=env), server_factory("uvicorn", env=env)
        async with PusherSocket(a) as on_a, PusherSocket(b) as on_b:
            await on_a.subscribe("orders")
            await wait_events(hooks, lambda ev: len(hooks.named("channel_occupied")) == 1, 5, "occupied")
            await on_b.subscribe("orders")  # the second node: no second channel_occupied
            await on_b.ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": "orders"}}))
            await on_b.subscribe("orders")
            await on_a.join("presence-room.1", "1")
            await on_b.join("presence-room.1", "2")
            await expect(on_a.ws, "pusher_internal:member_added")
            await send(on_b.ws, "client-hi", {"from": "b"}, channel="presence-room.1")
            await expect(on_a.ws, "client-hi")
            await wait_events(
                hooks,
                lambda ev: len(hooks.named("member_added")) == 2 and hooks.named("client_event"),
                5,
                "two members and a client event",
            )
            await on_b.ws.close()  # b leaves everything: orders and the room stay occupied on a
            await wait_events(hooks, lambda ev: hooks.named("member_removed"), 5, "member_removed")
            await on_a.ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": "orders"}}))
            await wait_events(
                hooks, lambda ev: hooks.named("channel_vacated", "orders"), 10, "orders vacated"
            )
        await wait_events(
            hooks, lambda ev: hooks.named("channel_vacated", "presence-room.1"), 10, "room vacated"
        )
        await asyncio.sleep(1.0)  # a negative check: no duplicate arrives from the other node meanwhile
        events = hooks.events()

    def count(name: str, channel: str) -> int:
        return sum(1 for e in events if e["name"] == name and e["channel"] == channel)

    assert count("channel_occupied", "orders") == 1
    assert count("channel_vacated", "orders") == 1
    assert count("channel_occupied", "presence-room.1") == 1
    assert count("channel_vacated", "presence-room.1") == 1
    assert sorted(e["user_id"] for e in hooks.named("member_added")) == ["1", "2"]
    assert sorted(e["user_id"] for e in hooks.named("member_removed")) == ["1", "2"]
    (client_event,) = hooks.named("client_event")
    assert client_event["user_id"] == "2" and client_event["socket_id"] == on_b.socket_id
    assert all(validated(d) is not None for d in hooks.deliveries)


@pytest.mark.redis
async def test_a_dead_node_is_reaped_and_its_channels_vacated(server_factory, redis_url, redis_prefix):
    with WebhookReceiver() as hooks:
        env = {**redis_env(redis_url, redis_prefix, BROADCAST_PRESENCE_TTL="2"), **hook_env(hooks.url)}
        a, b = server_factory("daphne", env=env), server_factory("daphne", env=env)
        async with PusherSocket(a) as on_a, PusherSocket(b) as on_b:
            await on_a.subscribe("shared")
            await on_b.subscribe("shared")
            await on_b.subscribe("only-b")
            await on_b.join("presence-lobby", "7")
            await wait_events(
                hooks,
                lambda ev: len(hooks.named("channel_occupied")) == 3 and hooks.named("member_added"),
                5,
                "three channels occupied",
            )
            b.kill()  # SIGKILL: no goodbye; the live node reaps it after its expiry (PRESENCE_TTL / 2)
            await wait_events(
                hooks,
                lambda ev: (
                    hooks.named("channel_vacated", "only-b")
                    and hooks.named("channel_vacated", "presence-lobby")
                    and hooks.named("member_removed")
                ),
                15,
                "the dead node's channels vacated",
            )
            assert hooks.named("channel_vacated", "shared") == []  # a still holds it
            assert hooks.named("member_removed") == [
                {"name": "member_removed", "channel": "presence-lobby", "user_id": "7"}
            ]


async def test_each_app_gets_the_webhooks_of_its_own_channels(server_factory):
    """``PUSHER_APPS``: each app's receiver gets its channels' events, under the names its clients
    use, signed with its own key and secret; the other app's channel of the same name stays apart."""
    import pusher

    with WebhookReceiver() as shop_hooks, WebhookReceiver() as chat_hooks:
        shop = {
            "id": "2001",
            "key": "shop-hooks",
            "secret": "shop-hooks-secret-0123",
            "webhook_urls": [shop_hooks.url],
        }
        chat = {
            "id": "2002",
            "key": "chat-hooks",
            "secret": "chat-hooks-secret-4567",
            "webhook_urls": [chat_hooks.url],
            "webhook_events": ["channel_occupied"],
        }
        server = server_factory("uvicorn", env={"PUSHER_APPS": json.dumps([shop, chat])})
        async with PusherSocket(server, key="chat-hooks") as chat_socket:
            await chat_socket.subscribe("orders")
            await wait_events(chat_hooks, lambda ev: len(ev) >= 1, 5, "chat's channel_occupied")
        async with PusherSocket(server, key="shop-hooks") as shop_socket:
            await shop_socket.subscribe("orders")
            await wait_events(shop_hooks, lambda ev: len(ev) >= 1, 5, "shop's channel_occupied")
        await wait_events(
            shop_hooks, lambda ev: any(e["name"] == "channel_vacated" for e in ev), 10, "shop's vacated"
        )
        assert shop_hooks.named("channel_occupied") == [{"name": "channel_occupied", "channel": "orders"}]
        assert shop_hooks.named("channel_vacated") == [{"name": "channel_vacated", "channel": "orders"}]
        # chat asked for channel_occupied only
        assert chat_hooks.events() == [{"name": "channel_occupied", "channel": "orders"}]

        for hooks, app in ((shop_hooks, shop), (chat_hooks, chat)):
            sdk = pusher.Pusher(app_id=app["id"], key=app["key"], secret=app["secret"])
            for delivery in hooks.deliveries:
                assert delivery.headers["X-Pusher-Key"] == app["key"]
                assert (
                    sdk.validate_webhook(
                        key=delivery.headers["X-Pusher-Key"],
                        signature=delivery.headers["X-Pusher-Signature"],
                        body=delivery.body.decode(),
                    )
                    is not None
                )
