"""Redis faults: a restart or a freeze of Redis is survived without a restart of anything else.

Two faults: Redis killed and started again (empty), and Redis frozen with SIGSTOP for longer
than the socket timeout, then SIGCONT. Publishers fail fast with one ``TransportError`` line and
publish again once Redis is back; servers keep serving their sockets, reconnect and deliver;
recovery replays the history or says ``recovery_failed``; presence heals.

These tests run their own ``redis-server`` (never the shared one) and kill or stop it by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.redis_support import (
    LastingPublisher,
    RedisServer,
    parse_results,
    redis_env,
    start_publisher,
    wait_until,
)
from tests.integration.wsclient import connect, expect, make_token, recv
from tests.servers import REPO_ROOT, server_env

pytestmark = pytest.mark.integration


@pytest.fixture
def own_redis():
    server = RedisServer().start()
    yield server
    server.kill()


class Reader:
    """Collect every ``tick`` frame a socket receives, in the background."""

    def __init__(self, ws, label=""):
        self.ws = ws
        self.label = label
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
    for node, label in zip(nodes, ("daphne", "uvicorn")):
        for _ in range(2):
            ws = await connect(node.ws_url("/ws?channel=general"))
            await expect(ws, "subscribed")
            readers.append(Reader(ws, label))
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
        # The answer comes first: no live message ahead of it (nor of the replay that follows).
        first = await recv(ws)
        assert first["event"] == "subscribed", first
        back = Reader(ws, "daphne (recovered)")
        back.ids = list(leaver.ids)
        readers.append(back)

        out, err = await asyncio.to_thread(publisher.communicate, timeout=60)
        results = parse_results(out)
        accepted = [r["id"] for r in results if r.get("id")]
        refused = [r for r in results if "error" in r]
        assert len(results) == 150 and accepted, err
        assert refused, "the outage should have refused some publishes (TransportError, not a hang)"
        try:
            await wait_until(
                lambda: all(set(accepted) <= set(r.ids) for r in readers),
                20,
                "every socket to have every accepted message",
            )
        except AssertionError as exc:
            missing = {
                f"{reader.label} #{n}": sorted(set(accepted) - set(reader.ids))
                for n, reader in enumerate(readers)
            }
            raise AssertionError(f"{exc}; missing: {missing}; refused: {len(refused)}") from None
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


# -- every side of a process through both faults ---------------------------------------------------
# "restart": Redis is SIGKILLed for the block and started again after, empty (no persistence).
# "freeze": Redis is SIGSTOPped for the block (TCP stays up, nothing answers) and SIGCONTed after.
FAULTS = ["restart", "freeze"]
TIMEOUT = 1.0  # BROADCAST_REDIS_SOCKET_TIMEOUT of every process in these tests


@contextlib.contextmanager
def redis_fault(server: RedisServer, fault: str):
    if fault == "freeze":
        with server.frozen():
            yield
    else:
        server.kill()
        try:
            yield
        finally:
            server.start()  # the same port


async def publish_until_ok(publisher: LastingPublisher, mode: str, n: int, channel: str = "") -> dict:
    """Publish until the (same, never restarted) publisher process is accepted again; bounded."""
    deadline = time.monotonic() + 20
    while True:
        result = await asyncio.to_thread(publisher.publish, mode, n, channel)
        if result["ok"]:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{mode} publishing did not recover within 20s: {result}")
        await asyncio.sleep(0.05)


async def ticks_until(ws, n: int, timeout: float = 20) -> list[dict]:
    """Every ``tick`` frame up to the one with ``{"n": n}``."""
    got: list[dict] = []
    while not got or got[-1]["data"] != {"n": n}:
        got.append(await expect(ws, "tick", timeout=timeout))
    return got


def broadcast_test_command(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), "broadcast", "test", "--channel", "general"],
        cwd=REPO_ROOT,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("fault", FAULTS)
async def test_publishers_fail_fast_servers_keep_serving_and_everything_recovers(
    server_factory, own_redis, fault
):
    env = redis_env(own_redis.url, f"faults-{fault}:", BROADCAST_REDIS_SOCKET_TIMEOUT=TIMEOUT)
    node = server_factory("uvicorn", env=env)
    publisher = await asyncio.to_thread(LastingPublisher, env, "general")
    sockets = []
    try:
        ws = await connect(node.ws_url("/ws?channel=general"))
        leaver = await connect(node.ws_url("/ws?channel=general"))
        sockets += [ws, leaver]
        await expect(ws, "subscribed")
        await expect(leaver, "subscribed")
        for n, mode in enumerate(("sync", "async")):
            assert (await asyncio.to_thread(publisher.publish, mode, n))["ok"]
            assert (await expect(ws, "tick"))["data"] == {"n": n}
        last_seen = (await expect(leaver, "tick"))["id"]  # {"n": 0}; it leaves before reading more
        await leaver.close()
        assert (await asyncio.to_thread(publisher.publish, "sync", 2))["ok"]  # kept in the history
        await expect(ws, "tick")

        with redis_fault(own_redis, fault.removesuffix("-aof")):
            # Publishers: one clear TransportError line each, within the socket timeout.
            for n, mode in ((3, "sync"), (4, "async")):
                result = await asyncio.to_thread(publisher.publish, mode, n)
                assert not result["ok"] and result["type"] == "TransportError", result
                assert result["error"].startswith("Redis publish failed") and "\n" not in result["error"]
                assert result["elapsed"] <= 2 * TIMEOUT + 0.5, result
                print(f"{fault}: {mode} publish refused in {result['elapsed']:.2f}s: {result['error']}")
            started = time.monotonic()
            cli = await asyncio.to_thread(broadcast_test_command, env)
            cli_elapsed = time.monotonic() - started
            assert cli.returncode != 0, cli.stdout
            [line] = cli.stderr.strip().splitlines()
            assert "Broadcast test failed: Redis publish failed" in line, cli.stderr
            print(
                f"{fault}: manage.py broadcast test exited {cli.returncode} after {cli_elapsed:.1f}s: {line}"
            )

            # The server keeps serving its sockets: pings are answered, public subscriptions work.
            await ws.send(json.dumps({"action": "ping", "data": {"k": 1}}))
            assert (await expect(ws, "pong", timeout=2))["data"] == {"k": 1}
            fresh = await connect(node.ws_url("/ws?channel=news"))
            sockets.append(fresh)
            await expect(fresh, "subscribed", timeout=TIMEOUT + 2)
            # Recovery needs the history, which is out of reach: said so at once, not a hang.
            early = await connect(node.ws_url("/ws"))
            sockets.append(early)
            await expect(early, "connected")
            started = time.monotonic()
            await early.send(json.dumps({"action": "subscribe", "channel": "general", "last_id": last_seen}))
            assert (await recv(early))["event"] == "subscribed"
            failed = await expect(early, "recovery_failed", timeout=3 * TIMEOUT + 2)
            assert failed["data"]["code"] == 4290 and "history unavailable" in failed["data"]["message"]
            print(f"{fault}: recovery_failed after {time.monotonic() - started:.2f}s during the fault")
            # Longer than the timeouts: the node has noticed that its pub/sub link is gone.
            await wait_until(
                lambda: "Redis pub/sub connection lost" in node.log_text(), 15, "the node to notice the fault"
            )
            await ws.send(json.dumps({"action": "ping", "data": {"k": 2}}))
            assert (await expect(ws, "pong", timeout=2))["data"] == {"k": 2}
        restored = time.monotonic()

        # The same publisher process publishes again, both ways; the node delivers again.
        await publish_until_ok(publisher, "sync", 10)
        accepted = time.monotonic() - restored
        await publish_until_ok(publisher, "async", 11)
        got = await ticks_until(ws, 10)
        delivered = time.monotonic() - restored
        got += await ticks_until(ws, 11)
        print(
            f"{fault}: publishing accepted {accepted:.2f}s and delivered {delivered:.2f}s after Redis was back"
        )
        numbers = [frame["data"]["n"] for frame in got]
        print(f"{fault}: delivered after the fault: {numbers}")
        assert len(numbers) == len(set(numbers)), f"a message arrived twice: {numbers}"
        # A publish refused by a timeout may still have run once Redis woke up (outcome unknown);
        # one refused because Redis was down never does.
        assert set(numbers) - {10, 11} <= ({3, 4} if fault == "freeze" else set()), numbers
        assert (await asyncio.to_thread(publisher.publish, "sync", 12, "news"))["ok"]
        assert (await expect(fresh, "tick", timeout=10))["data"] == {"n": 12}  # subscribed in the fault

        # The client that left before the fault resubscribes with the last id it saw.
        back = await connect(node.ws_url("/ws"))
        sockets.append(back)
        await expect(back, "connected")
        await back.send(json.dumps({"action": "subscribe", "channel": "general", "last_id": last_seen}))
        assert (await recv(back))["event"] == "subscribed"
        if fault == "restart":  # the history went with Redis: said so, never a silent gap
            failed = await expect(back, "recovery_failed")
            assert failed["data"]["code"] == 4290
        else:  # the history is intact: everything it missed, before and after the fault
            frames = []
            while (frame := await recv(back))["event"] != "recovered":
                frames.append(frame)
            replayed = [f["data"]["n"] for f in frames if f["event"] == "tick"]
            print(f"{fault}: replayed {replayed}")
            assert {1, 2, 10, 11} <= set(replayed) and replayed == sorted(replayed), replayed
        assert "Traceback" not in node.log_text(), node.log_tail()  # warnings, not crashes
    finally:
        await asyncio.to_thread(publisher.close)
        for sock in sockets:
            await sock.close()


PRESENCE = "presence.chat.7"
PRESENCE_TTL = 3.0  # heartbeat every 0.75 s, a node expires 1.5 s after its last one


async def join_presence(node, user: int):
    ws = await connect(node.ws_url(f"/ws?channel={PRESENCE}&auth_token={make_token(user)}"))
    ack = await expect(ws, "subscribed", timeout=2 * TIMEOUT + 5)
    return ws, sorted(m["id"] for m in ack["data"]["members"])


async def member_events(ws, until, timeout: float = 20) -> list[tuple[str, str]]:
    """``(event, user id)`` of the member frames ``ws`` receives until ``until(events)`` holds."""
    events: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while not until(events):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"member events so far: {events}")
        try:
            frame = await recv(ws, left)
        except TimeoutError:
            continue
        if frame["event"] in ("member_added", "member_removed"):
            events.append((frame["event"], frame["data"]["id"]))
    return events


@pytest.mark.parametrize("fault", [*FAULTS, "restart-aof"])
async def test_presence_heals(server_factory, tmp_path, fault):
    # "restart-aof": a restart of a Redis that keeps an append-only file (its data comes back).
    own_redis = RedisServer(aof_dir=tmp_path if fault == "restart-aof" else None).start()
    env = redis_env(
        own_redis.url, f"faults-presence-{fault}:", BROADCAST_REDIS_SOCKET_TIMEOUT=TIMEOUT,
        BROADCAST_PRESENCE_TTL=PRESENCE_TTL,
    )  # fmt: skip
    a, c, doomed = (server_factory("uvicorn", env=env) for _ in range(3))
    sockets = []
    try:
        alice, _ = await join_presence(a, 1)
        carol, _ = await join_presence(c, 3)
        bob, members = await join_presence(doomed, 2)
        sockets += [alice, carol, bob]
        assert members == ["1", "2", "3"]
        await member_events(alice, lambda e: {u for _, u in e} == {"2", "3"})

        with redis_fault(own_redis, fault.removesuffix("-aof")):
            frozen_at = time.monotonic()
            doomed.kill()  # a node dies while Redis is away: nobody hears its members leave
            started = time.monotonic()
            dave, members = await join_presence(a, 4)  # a join while Redis is away
            print(f"{fault}: a presence join answered in {time.monotonic() - started:.2f}s during the fault")
            sockets.append(dave)
            assert {"1", "4"} <= set(members), members  # the node's own view at least
            await wait_until(
                lambda: (
                    all("presence heartbeat failed" in n.log_text() for n in (a, c))
                    and time.monotonic() - frozen_at > PRESENCE_TTL / 2 + 0.5
                ),
                20,
                "both nodes to miss heartbeats for longer than a node's expiry",
            )
        restored = time.monotonic()

        # The join made meanwhile reaches every node; the live nodes' members stay.
        seen = await member_events(carol, lambda e: ("member_added", "4") in e)
        healed = time.monotonic() - restored
        if fault == "restart":
            # The dead node's member went with Redis's data: nobody lists them any more, but
            # nobody can tell the sockets that saw them join either (see docs/scaling.md#faults).
            seen += await member_events(alice, lambda e: ("member_added", "4") in e)
        else:  # the dead node's member is reaped, and the sockets that saw them are told
            seen += await member_events(alice, lambda e: ("member_removed", "2") in e)
            reaped = time.monotonic() - restored
            print(f"{fault}: the dead node's member removed {reaped:.2f}s after Redis was back")
        print(f"{fault}: the meanwhile join announced {healed:.2f}s after Redis was back: {seen}")
        assert ("member_removed", "3") not in seen and ("member_removed", "1") not in seen, seen
        # A node puts its own members back (after a restart that lost them) on its first
        # heartbeat that gets through: wait for each node's, not only for the first one's.
        await wait_until(
            lambda: all("presence heartbeat to Redis restored" in n.log_text() for n in (a, c)),
            20,
            "both nodes' presence heartbeats to get through again",
        )
        eve, members = await join_presence(c, 5)
        sockets.append(eve)
        assert members == ["1", "3", "4", "5"]
        for node in (a, c):
            assert "Traceback" not in node.log_text(), node.log_tail()
    finally:
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.close()
        own_redis.kill()
