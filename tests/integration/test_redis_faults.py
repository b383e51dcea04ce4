"""Redis faults: a restart in the middle of a stream is survived without a restart of anything else.

These tests run their own ``redis-server`` (never the shared one) and kill it by PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

import pytest

from tests.integration.redis_support import RedisServer, parse_results, redis_env, start_publisher, wait_until
from tests.integration.wsclient import connect, expect, recv

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.kill()


class Reader:
    """Collect every ``tick`` frame a socket receives, in the background."""

    def __init__(self, ws):
        self.ws = ws
        self.ids: list[str] = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            frame = json.loads(await self.ws.recv())
            if frame.get("event") == "tick":
                self.ids.append(frame["id"])

    async def close(self):
        self.task.cancel()
        await self.ws.close()


def in_order(ids: list[str]) -> bool:
    epochs: list[str] = []
    last: dict[str, int] = {}
    for value in ids:
        epoch, offset = value.rsplit(":", 1)
        if epoch not in last:
            epochs.append(epoch)
        elif epochs[-1] != epoch or int(offset) <= last[epoch]:
            return False
        last[epoch] = int(offset)
    return True


async def test_redis_restart_mid_stream_is_survived_and_nothing_is_missed(server_factory, own_redis):
    env = redis_env(own_redis.url, "faults:", BROADCAST_REDIS_SOCKET_TIMEOUT=2)
    nodes = [server_factory("daphne", env=env), server_factory("uvicorn", env=env)]
    readers = []
    for node in nodes:
        for _ in range(2):
            ws = await connect(node.ws_url("/ws?channel=general"))
            await expect(ws, "subscribed")
            readers.append(Reader(ws))
    publisher = start_publisher(env, "general", 150, interval=0.02)
    try:
        await wait_until(lambda: all(len(r.ids) >= 20 for r in readers), 20, "the stream to start")
        own_redis.kill()
        await asyncio.sleep(0.3)  # the outage
        own_redis.start()
        old_epoch = readers[0].ids[0].rsplit(":", 1)[0]
        await wait_until(
            lambda: all(r.ids and not r.ids[-1].startswith(old_epoch) for r in readers),
            20,
            "every node to deliver again after the restart",
        )

        # A client drops out after the restart and recovers the messages it missed.
        leaver = readers.pop()
        await leaver.close()
        last_id = leaver.ids[-1]
        await wait_until(lambda: len(readers[0].ids) >= len(leaver.ids) + 10, 20, "more messages")
        ws = await connect(nodes[0].ws_url("/ws"))
        await expect(ws, "connected")
        await ws.send(json.dumps({"action": "subscribe", "channel": "general", "last_id": last_id}))
        assert (await recv(ws))["event"] == "subscribed"
        back = Reader(ws)
        back.ids = list(leaver.ids)
        readers.append(back)

        out, err = await asyncio.to_thread(publisher.communicate, timeout=60)
        results = parse_results(out)
        accepted = [r["id"] for r in results if r.get("id")]
        refused = [r for r in results if "error" in r]
        assert len(results) == 150 and accepted, err
        assert refused, "the outage should have refused some publishes (TransportError, not a hang)"
        await wait_until(
            lambda: all(set(accepted) <= set(r.ids) for r in readers),
            20,
            "every socket to have every accepted message",
        )
        for reader in readers:
            assert len(reader.ids) == len(set(reader.ids)), "a message arrived twice"
            assert in_order(reader.ids)
    finally:
        if publisher.poll() is None:
            publisher.kill()
        for reader in readers:
            await reader.close()


async def test_recovery_from_before_a_restart_fails_explicitly(server_factory, own_redis):
    env = redis_env(own_redis.url, "faults2:", BROADCAST_REDIS_SOCKET_TIMEOUT=2)
    node = server_factory("uvicorn", env=env)
    ws = await connect(node.ws_url("/ws?channel=general"))
    await expect(ws, "subscribed")
    proc = start_publisher(env, "general", 1)
    await asyncio.to_thread(proc.communicate, timeout=60)
    old = (await expect(ws, "tick"))["id"]
    await ws.close()
    own_redis.kill()
    own_redis.start()  # no persistence: the history is gone
    proc = start_publisher(env, "general", 1)
    await asyncio.to_thread(proc.communicate, timeout=60)
    ws = await connect(node.ws_url("/ws"))
    try:
        await expect(ws, "connected")
        await ws.send(json.dumps({"action": "subscribe", "channel": "general", "last_id": old}))
        assert (await recv(ws))["event"] == "subscribed"
        failed = await recv(ws)
        assert failed["event"] == "recovery_failed" and failed["data"]["code"] == 4290
    finally:
        await ws.close()


async def test_subscriptions_made_while_redis_is_down_work_once_it_is_back(server_factory, own_redis):
    env = redis_env(own_redis.url, "faults3:", BROADCAST_REDIS_SOCKET_TIMEOUT=2)
    node = server_factory("uvicorn", env=env)
    own_redis.kill()
    ws = await connect(node.ws_url("/ws?channel=general"))
    try:
        await expect(ws, "subscribed")  # the socket is served; the process subscribes later
        started = time.monotonic()
        proc = start_publisher(env, "general", 1)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
        [refused] = parse_results(out)
        assert "error" in refused and "Redis publish failed" in refused["error"]
        assert time.monotonic() - started < 10  # a clear error, not a hang (includes Django start-up)
        own_redis.start()
        await wait_until(lambda: _published(env), 20, "Redis to accept a publish again")
        frame = await expect(ws, "tick", timeout=10)
        assert frame["data"] == {"n": 0}
    finally:
        await ws.close()


def _published(env) -> bool:
    import subprocess

    from tests.integration.redis_support import REPO_ROOT, server_env

    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.redis_publisher", "general", "1", "0", "tick"],
        cwd=REPO_ROOT,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return '"id"' in result.stdout


async def test_an_unresponsive_redis_means_an_error_not_a_hang(server_factory, own_redis):
    env = redis_env(own_redis.url, "faults4:", BROADCAST_REDIS_SOCKET_TIMEOUT=1)
    node = server_factory("uvicorn", env=env)
    ws = await connect(node.ws_url("/ws?channel=general"))
    try:
        await expect(ws, "subscribed")
        os.kill(own_redis.process.pid, signal.SIGSTOP)  # Redis hangs: TCP stays up, nothing answers
        try:
            started = time.monotonic()
            proc = start_publisher(env, "general", 1)
            out, _ = await asyncio.to_thread(proc.communicate, timeout=60)
            [result] = parse_results(out)
            assert "error" in result and "Timeout" in result["error"], result
            assert time.monotonic() - started < 10  # REDIS_SOCKET_TIMEOUT, plus Django's start-up
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)
        # Redis answers again: the same socket gets new broadcasts, nothing was restarted.
        await wait_until(lambda: _published(env), 20, "Redis to accept a publish again")
        assert (await expect(ws, "tick", timeout=10))["data"] == {"n": 0}
    finally:
        await ws.close()
