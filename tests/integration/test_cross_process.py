"""A broadcast published in another process (CLI, task) reaches the server's sockets.

With the in-memory default the publisher cannot reach the server's memory, so the
websocket driver posts to the server's signed HTTP trigger; with channels-redis it goes
through the channel layer (one group message per server process).
"""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.wsclient import connect, expect
from tests.servers import run_manage

pytestmark = pytest.mark.integration

PUBLISH = (
    "from django_broadcasting import broadcast_to_channel; "
    "broadcast_to_channel('general', 'from_cli', {{'n': {n}}})"
)

QUEUED = """
from django_broadcasting.events import ShouldBroadcast
class Queued(ShouldBroadcast):
    broadcast_queue = "default"
    def broadcast_on(self): return ["general"]
    def broadcast_as(self): return "from_task"
    def broadcast_with(self): return {"n": 7}
Queued().dispatch()
"""


def layer_env(kind: str, redis_prefix: str | None) -> dict[str, str]:
    if kind == "memory":
        return {}
    return {"BROADCAST_CHANNEL_LAYER": "redis", "BROADCAST_CHANNEL_LAYER_PREFIX": f"{redis_prefix}asgi"}


@pytest.fixture(params=["memory", "channels-redis"])
def layer(request):
    if request.param == "memory":
        return layer_env("memory", None)
    return layer_env("redis", request.getfixturevalue("redis_prefix"))


async def test_cli_process_publishes_to_server_sockets(server_factory, migrated_db_path, layer):
    server = server_factory("daphne", env=layer)
    env = {"BROADCAST_WEBSOCKET_PORT": str(server.port), "DATABASE_PATH": str(migrated_db_path), **layer}
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        run_manage("shell", "-c", PUBLISH.format(n=1), env=env)
        frame = await expect(ws, "from_cli")
        assert frame["data"] == {"n": 1} and frame["channel"] == "general"


async def test_queued_broadcast_from_a_task_reaches_sockets(server_factory, migrated_db_path, layer):
    server = server_factory("uvicorn", env=layer)
    env = {"BROADCAST_WEBSOCKET_PORT": str(server.port), "DATABASE_PATH": str(migrated_db_path), **layer}
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        run_manage("shell", "-c", QUEUED, env=env)
        assert (await expect(ws, "from_task"))["data"] == {"n": 7}


async def test_channels_redis_fans_out_once_per_socket_across_two_servers(server_factory, redis_prefix):
    env = layer_env("redis", redis_prefix)
    a = server_factory("daphne", env=env)
    b = server_factory("uvicorn", env=env)
    sockets = []
    try:
        for server in (a, b, a, b):
            ws = await connect(server.ws_url("/ws?channel=general"))
            sockets.append(ws)
            await expect(ws, "subscribed")
        tag = uuid.uuid4().hex
        run_manage(
            "shell",
            "-c",
            f"from django_broadcasting import broadcast_to_channel; "
            f"broadcast_to_channel('general', 'once', {{'tag': '{tag}'}})",
            env=env,
        )
        for ws in sockets:
            assert (await expect(ws, "once"))["data"]["tag"] == tag
        for ws in sockets:  # exactly once: nothing else follows
            await ws.send(json.dumps({"action": "ping"}))
            nxt = json.loads(await ws.recv())
            assert nxt["event"] == "pong", nxt
    finally:
        for ws in sockets:
            await ws.close()


async def test_cli_publisher_without_server_fails_clearly(migrated_db_path):
    from tests.servers import free_port

    env = {"BROADCAST_WEBSOCKET_PORT": str(free_port()), "DATABASE_PATH": str(migrated_db_path)}
    with pytest.raises(Exception) as info:
        run_manage("shell", "-c", PUBLISH.format(n=2), env=env)
    assert "Cannot reach the broadcast server" in str(info.value)


async def test_wsgi_view_publishes_to_server_sockets(server_factory, migrated_db_path, layer):
    import subprocess
    import sys

    import httpx

    from tests.servers import REPO_ROOT, free_port, port_open, server_env, wait_for

    server = server_factory("daphne", env=layer)
    port = free_port()
    env = server_env(
        {"BROADCAST_WEBSOCKET_PORT": str(server.port), "DATABASE_PATH": str(migrated_db_path), **layer}
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tests/integration/wsgi_publisher.py"), str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: port_open("127.0.0.1", port), timeout=30, message="WSGI server")
        async with await connect(server.ws_url("/ws?channel=general")) as ws:
            await expect(ws, "subscribed")
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{port}/publish")
            assert response.status_code == 200, response.text
            assert (await expect(ws, "from_wsgi"))["data"] == {"path": "/publish"}
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_publisher_finds_the_local_server_without_a_port_setting(
    server_factory, migrated_db_path, kind
):
    """`runserver` on 8000 or `broadcast websocket` on 8080: a CLI publisher with no port setting finds it."""
    from django_broadcasting.discovery import record_path

    server = server_factory(kind)
    try:
        async with await connect(server.ws_url("/ws?channel=general")) as ws:  # the server records itself
            await expect(ws, "subscribed")
            run_manage("shell", "-c", PUBLISH.format(n=3), env={"DATABASE_PATH": str(migrated_db_path)})
            assert (await expect(ws, "from_cli"))["data"] == {"n": 3}
    finally:
        record_path().unlink(missing_ok=True)
