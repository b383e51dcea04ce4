"""The redis driver over TLS (``rediss://``) against a private TLS-only redis-server."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.conftest import require_service
from tests.integration.redis_support import RedisServer, make_certificate, redis_env, run_publisher
from tests.integration.wsclient import connect, expect

pytestmark = pytest.mark.integration


@pytest.fixture
def tls_redis(tmp_path):
    require_service(shutil.which("openssl") is not None, "openssl")
    server = RedisServer(tls=make_certificate(tmp_path)).start()
    yield server
    server.kill()


async def test_broadcasts_travel_over_tls(server_factory, tls_redis):
    env = redis_env(tls_redis.url, "tls:")
    node = server_factory("uvicorn", env=env)
    ws = await connect(node.ws_url("/ws?channel=general"))
    try:
        await expect(ws, "subscribed")
        [result] = await asyncio.to_thread(run_publisher, env, "general", 1)
        assert result.get("id"), result
        frame = await expect(ws, "tick")
        assert frame["id"] == result["id"]
    finally:
        await ws.close()


async def test_plain_redis_url_against_a_tls_port_fails_clearly(tls_redis):
    env = redis_env(f"redis://127.0.0.1:{tls_redis.port}/0", "tls:", BROADCAST_REDIS_SOCKET_TIMEOUT=1)
    [result] = await asyncio.to_thread(run_publisher, env, "general", 1)
    assert "Redis publish failed" in result.get("error", "")
