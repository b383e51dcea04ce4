"""Every way of publishing goes through the one resolved backend, and reaches the server's sockets.

Two set-ups where a second path used to miss the hubs:

- ``BROADCAST_REDIS_ENABLED=true`` next to the default ``websocket`` driver: the ``redis``
  backend is the default for everything (helpers, events, ``ShouldBroadcastNow``, queued
  tasks, the CLI, and the server's own HTTP API and trigger).
- a channels-redis layer under the ``websocket`` driver: everything goes through the layer.

Each publish from another process prints its receipt, so the test also checks who accepted it.
"""

from __future__ import annotations

import json
import time

import pytest

from django_broadcasting.backends.local.trigger import sign
from tests.integration.pusher_client import APP_ID, APP_KEY, APP_SECRET, PUSHER_ENV
from tests.integration.wsclient import connect, expect
from tests.servers import run_manage

pytestmark = [pytest.mark.integration, pytest.mark.redis]

EVERY_PYTHON_WAY = """
from django_broadcasting import broadcast, broadcast_to_channel
from django_broadcasting.broadcasting import broadcast_many, publish
from django_broadcasting.events import ShouldBroadcast, ShouldBroadcastNow
from django_broadcasting.messages import Message

class Now(ShouldBroadcastNow):
    def broadcast_on(self): return ["general"]
    def broadcast_as(self): return "via_now"

class Queued(ShouldBroadcast):
    broadcast_queue = "default"
    def broadcast_on(self): return ["general"]
    def broadcast_as(self): return "via_queue"

receipts = [
    broadcast_to_channel("general", "via_helper", {"n": 1}).receipt,
    broadcast().channel("general").event("via_fluent").with_data({"n": 2}).send().receipt,
    broadcast_many([("general", "via_many", {"n": 3}), ("general", "via_many", {"n": 4})]).receipt,
    publish(Message.for_channels(["general"], "via_publish", {"n": 5})).receipt,
]
Now().dispatch()
Queued().dispatch()
for receipt in receipts:
    print("RECEIPT", receipt.accepted_by)
"""


@pytest.fixture(params=["redis-enabled", "channels-redis"])
def setup(request, redis_url, redis_prefix):
    if request.param == "redis-enabled":
        env = {
            "BROADCAST_REDIS_ENABLED": "true",
            "BROADCAST_REDIS_URL": redis_url,
            "BROADCAST_CHANNELS_PREFIX": redis_prefix,
        }
        return request.param, env, "Redis at "
    env = {"BROADCAST_CHANNEL_LAYER": "redis", "BROADCAST_CHANNEL_LAYER_PREFIX": f"{redis_prefix}asgi"}
    return request.param, env, "the channel layer 'default'"


async def test_every_python_way_reaches_the_server_through_the_default_backend(
    server_factory, migrated_db_path, setup
):
    name, env, accepted_by = setup
    server = server_factory("uvicorn", env=env)
    # The publisher is told no port: with a shared transport it needs none (a wrong trigger
    # address would make any stray HTTP path fail loudly).
    publisher_env = {**env, "DATABASE_PATH": str(migrated_db_path), "BROADCAST_WEBSOCKET_PORT": "9"}
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        output = run_manage("shell", "-c", EVERY_PYTHON_WAY, env=publisher_env)
        for event in (
            "via_helper",
            "via_fluent",
            "via_many",
            "via_many",
            "via_publish",
            "via_now",
            "via_queue",
        ):
            frame = await expect(ws, event)
            assert frame["channel"] == "general"
        receipts = [line.split(" ", 1)[1] for line in output.splitlines() if line.startswith("RECEIPT ")]
        assert len(receipts) == 4 and all(r.startswith(accepted_by) for r in receipts), (name, receipts)


async def test_the_cli_publishes_through_the_default_backend(server_factory, migrated_db_path, setup):
    _, env, accepted_by = setup
    server = server_factory("uvicorn", env=env)
    publisher_env = {**env, "DATABASE_PATH": str(migrated_db_path), "BROADCAST_WEBSOCKET_PORT": "9"}
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        output = run_manage("broadcast", "test", "--channel", "general", env=publisher_env)
        assert (await expect(ws, "test"))["data"]["message"] == "Hello World"
        assert accepted_by in output, output


async def test_the_http_api_and_the_trigger_publish_through_the_default_backend(
    server_factory, redis_client, redis_prefix, setup
):
    import httpx
    import pusher

    name, env, _ = setup
    server = server_factory("uvicorn", env={**env, **PUSHER_ENV})
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        if name == "redis-enabled":
            before = _publish_calls(redis_client)
        client = pusher.Pusher(
            app_id=APP_ID,
            key=APP_KEY,
            secret=APP_SECRET,
            host="127.0.0.1",
            port=server.port,
            ssl=False,
        )
        client.trigger("general", "via_http_api", {"n": 1})
        assert (await expect(ws, "via_http_api"))["data"] == {"n": 1}

        body = json.dumps({"channel": "general", "event": "via_trigger", "data": {"n": 2}}).encode()
        async with httpx.AsyncClient() as http:
            response = await http.post(
                server.base_url + "/api/broadcast/events",
                content=body,
                headers={"Content-Type": "application/json", **_signed(server, body)},
            )
        assert response.status_code == 202, response.text
        assert (await expect(ws, "via_trigger"))["data"] == {"n": 2}
        if name == "redis-enabled":
            # Both went out through Redis (the server heard them back on its subscription).
            assert _publish_calls(redis_client) >= before + 2


def _publish_calls(redis_client) -> int:
    stats = redis_client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_publish", "cmdstat_evalsha"))


def _signed(server, body: bytes) -> dict[str, str]:
    # The server's trigger secret is derived from its SECRET_KEY, which the test settings share.
    return sign(body, int(time.time()))
