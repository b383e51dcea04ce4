"""The soak's clients: one asyncio loop per process holding stable subscribers and churners.

Each worker process (``worker_main``) is driven by ``bench/soak.py`` over a pipe: it connects its
stable subscribers and answers ``ready``, churns until told ``stop`` (answering the counts), then
on ``report`` answers what every stable subscriber received and closes them. Clients use the
``websockets`` package (both protocols), answer ``pusher:ping`` and ping every 20 s as the
JavaScript clients do, and sign Pusher subscriptions with the app secret (what a backend's
``/broadcasting/auth`` would return).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from . import procs

APP = ("7", "soak-key", "soak-secret-0123456789abcdef")
STABLE_CHANNELS = ("soak.public", "presence.chat.soak0")


@dataclass
class Plan:
    """What one run does; ``smoke`` is the test suite's toy size."""

    duration: float  # seconds of churn
    sockets: int
    backend: str
    rate: float = 10.0  # publisher ticks per second
    hold: tuple[float, float] = (10.0, 60.0)  # seconds a churner stays connected
    warmup: float = 0.0  # seconds of samples left out of the slope
    workers: int = 2
    settle: float = 60.0  # seconds allowed for the figures to come back after everyone left

    @property
    def rooms(self) -> int:
        """Churners spread over soak.c.<k> and presence.chat.soak<k>: about 40 members a room
        (each join sends the member list and a member_added to the room)."""
        return max(4, self.sockets // 40)

    @property
    def stable(self) -> int:
        return max(4, self.sockets // 20)


def jwt_for(user_id: str) -> str:
    import jwt

    now = int(time.time())
    claims = {"sub": user_id, "aud": "websocket", "iat": now, "exp": now + 3600, "roles": []}
    return jwt.encode(claims, procs.BENCH_JWT_SECRET, algorithm="HS256")


def pusher_auth(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    """The signature ``/broadcasting/auth`` would give, made here with the app secret (as a backend would)."""
    text = f"{socket_id}:{channel}" + (f":{channel_data}" if channel_data is not None else "")
    return f"{APP[1]}:{hmac.new(APP[2].encode(), text.encode(), hashlib.sha256).hexdigest()}"


class Client:
    """One socket of either protocol, with just what the soak needs."""

    def __init__(self, port: int, kind: str, user_id: str) -> None:
        self.port, self.kind, self.user_id = port, kind, user_id
        self.ws: Any = None
        self.socket_id = ""
        self.got: dict[str, set[int]] = {}
        self.reader: asyncio.Task | None = None
        self.waiters: dict[str, asyncio.Future] = {}
        self.errors: list[str] = []

    async def open(self) -> None:
        import websockets

        if self.kind == "native":
            url = f"ws://127.0.0.1:{self.port}/ws?auth_token={jwt_for(self.user_id)}"
        else:
            url = f"ws://127.0.0.1:{self.port}/app/{APP[1]}?protocol=7&client=soak&version=1"
        self.ws = await websockets.connect(
            url, open_timeout=60, ping_interval=None, compression=None, max_queue=None
        )
        first = json.loads(await asyncio.wait_for(self.ws.recv(), 60))
        data = first.get("data")
        if isinstance(data, str):
            data = json.loads(data)
        self.socket_id = data["socket_id"]
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                frame = json.loads(text)
                event, channel, data = frame.get("event"), frame.get("channel"), frame.get("data")
                if event == "pusher:ping":  # what pusher-js does; the server closes silent clients
                    await self.ws.send('{"event":"pusher:pong","data":{}}')
                elif event == "tick":
                    if isinstance(data, str):
                        data = json.loads(data)
                    self.got.setdefault(channel, set()).add(data["seq"])
                elif event in ("subscribed", "pusher_internal:subscription_succeeded"):
                    waiter = self.waiters.pop(channel, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(True)
                elif event in ("error", "pusher:error", "pusher:subscription_error"):
                    self.errors.append(text[:300])
                    waiter = self.waiters.pop(channel, None) if channel else None
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(RuntimeError(text[:300]))
        except Exception:  # noqa: BLE001 - the socket went away: the caller sees it on its next send
            pass

    def wire_name(self, channel: str) -> str:
        if self.kind == "native":
            return channel
        if channel.startswith("presence."):
            return "presence-" + channel[len("presence.") :]
        if channel.startswith("user."):
            return "private-" + channel
        return channel

    async def subscribe(self, channel: str) -> None:
        name = self.wire_name(channel)
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[name] = waiter
        if self.kind == "native":
            await self.ws.send(json.dumps({"action": "subscribe", "channel": name}))
        else:
            data: dict[str, Any] = {"channel": name}
            if name.startswith("presence-"):
                data["channel_data"] = json.dumps({"user_id": self.user_id, "user_info": {"name": "soak"}})
                data["auth"] = pusher_auth(self.socket_id, name, data["channel_data"])
            elif name.startswith("private-"):
                data["auth"] = pusher_auth(self.socket_id, name)
            await self.ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
        await asyncio.wait_for(waiter, 60)

    async def keepalive(self, every: float) -> None:
        """Ping as the JavaScript clients do, so the server's activity timeout never closes us."""
        ping = '{"action":"ping"}' if self.kind == "native" else '{"event":"pusher:ping","data":{}}'
        try:
            while True:
                await asyncio.sleep(every)
                await self.ws.send(ping)
        except Exception:  # noqa: BLE001 - closed: the reader has seen it
            pass

    async def unsubscribe(self, channel: str) -> None:
        name = self.wire_name(channel)
        if self.kind == "native":
            await self.ws.send(json.dumps({"action": "unsubscribe", "channel": name}))
        else:
            await self.ws.send(json.dumps({"event": "pusher:unsubscribe", "data": {"channel": name}}))

    async def whisper(self, channel: str, n: int) -> None:
        name = self.wire_name(channel)
        data = {"typing": True, "n": n, "pad": "w" * 64}
        if self.kind == "native":
            await self.ws.send(
                json.dumps({"action": "whisper", "channel": name, "event": "typing", "data": data})
            )
        else:
            await self.ws.send(json.dumps({"event": "client-typing", "channel": name, "data": data}))

    async def close(self, abort: bool = False) -> None:
        if self.ws is None:
            return
        if abort:
            self.ws.transport.abort()
        else:
            try:
                await asyncio.wait_for(self.ws.close(), 10)
            except Exception:  # noqa: BLE001
                self.ws.transport.abort()
        if self.reader is not None:
            try:
                await asyncio.wait_for(self.reader, 10)
            except Exception:  # noqa: BLE001
                self.reader.cancel()


async def churn_slot(port: int, slot: int, plan: Plan, stop: asyncio.Event, counts: dict[str, int]) -> None:
    rng = random.Random(slot)
    await asyncio.sleep(rng.uniform(0, min(plan.hold[0], 5.0)))  # spread the first connects
    cycle = 0
    while not stop.is_set():
        cycle += 1
        kind = "native" if (slot + cycle) % 2 else "pusher"
        room = rng.randrange(plan.rooms)
        client = Client(port, kind, f"churn{slot}")
        abort = False
        try:
            await client.open()
            counts["connects"] += 1
            await client.subscribe(f"soak.c.{room}")
            await client.subscribe(f"presence.chat.soak{room}")
            counts["subscribes"] += 2
            for n in range(rng.randint(1, 3)):
                await client.whisper(f"presence.chat.soak{room}", n)
                counts["whispers"] += 1
            if rng.random() < 0.3:
                await client.unsubscribe(f"soak.c.{room}")
            try:
                await asyncio.wait_for(stop.wait(), rng.uniform(*plan.hold))
            except TimeoutError:
                pass
            abort = rng.random() < 0.1
        except Exception as exc:  # noqa: BLE001 - counted, and the slot carries on
            counts["failures"] += 1
            counts.setdefault("first_failure", repr(exc)[:200])  # type: ignore[arg-type]
        finally:
            await client.close(abort=abort)
        if client.errors:
            counts["error_frames"] += len(client.errors)


async def worker_run(pipe: Any, port: int, index: int, plan: Plan) -> None:
    loop = asyncio.get_running_loop()
    stables = [s for s in range(plan.stable) if s % plan.workers == index]
    clients = []
    for s in stables:
        client = Client(port, "native" if s % 2 == 0 else "pusher", f"stable{s}")
        await client.open()
        for channel in (*STABLE_CHANNELS, f"user.stable{s}"):
            await client.subscribe(channel)
        clients.append(client)
    pings = [loop.create_task(c.keepalive(20.0)) for c in clients]
    pipe.send(("ready", len(clients)))
    stop = asyncio.Event()
    counts = {"connects": 0, "subscribes": 0, "whispers": 0, "failures": 0, "error_frames": 0}
    churners = [s for s in range(plan.sockets - plan.stable) if s % plan.workers == index]
    slots = [loop.create_task(churn_slot(port, s, plan, stop, counts)) for s in churners]
    await loop.run_in_executor(None, pipe.recv)  # "stop churn"
    stop.set()
    await asyncio.gather(*slots)
    pipe.send(("churned", counts))
    await loop.run_in_executor(None, pipe.recv)  # "report": the publisher has stopped
    got = {c.user_id: {ch: sorted(seqs) for ch, seqs in c.got.items()} for c in clients}
    errors = [e for c in clients for e in c.errors]
    for task in pings:
        task.cancel()
    for client in clients:
        await client.close()
    pipe.send(("left", got, errors))


def worker_main(pipe: Any, port: int, index: int, plan: Plan) -> None:
    from .loadgen import raise_nofile

    raise_nofile()
    try:
        asyncio.run(worker_run(pipe, port, index, plan))
    except BaseException as exc:  # noqa: BLE001 - reported to the driver
        pipe.send(("error", repr(exc)))
