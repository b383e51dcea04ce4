"""Questions every node answers at once, over Redis pub/sub: channel counts and closing a user's sockets.

The Pusher HTTP API answers for the whole cluster (``GET /channels``, ``/channels/{name}``,
``POST /users/{id}/terminate_connections``), whichever node (or WSGI worker) gets the request.
It asks every server process at the moment of the request rather than reading reports that
are seconds old:

1. the asking process PUBLISHes ``{"op", "reply", ...}`` on ``{prefix}bc:control``; PUBLISH
   answers how many processes listen, which is how many answers to wait for;
2. every server process listens on that channel (``ControlListener``, one pub/sub connection
   per process), works out its own part and RPUSHes it to the request's ``reply`` list;
3. the asker BLPOPs that many answers, waiting at most ``CONTROL_TIMEOUT`` seconds, and merges
   them. A node that does not answer in time is left out (and logged); the reply list expires.

Operations: ``counts`` (``{"prefix"}`` -> ``{"channels": {name: subscriptions}}``) and
``terminate`` (``{"user", "app"}`` -> ``{"closed": n}``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import RedisBackend

logger = logging.getLogger("django_broadcasting.server")

__all__ = ["CONTROL_TIMEOUT", "ControlListener", "arequest"]

#: How long an asker waits for every node's answer.
CONTROL_TIMEOUT = 3.0
#: How long an answer list outlives its request (answers that came too late are dropped with it).
REPLY_TTL_MS = 30_000
#: How often a listener pings Redis on a quiet link (a dead link then fails and reconnects).
PING_INTERVAL = 5.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def arequest(
    backend: RedisBackend, op: str, timeout: float = CONTROL_TIMEOUT, **args: Any
) -> list[dict]:
    """Ask every listening node ``op``; return their answers (those that came within ``timeout``)."""
    keys = backend.keys
    reply = keys.control_reply(uuid.uuid4().hex)
    request = json.dumps({"op": op, "reply": reply, **args}, separators=(",", ":"))
    answers: list[dict] = []
    loop = asyncio.get_running_loop()
    async with backend.session() as client:
        if backend.cluster_nodes:  # Redis Cluster: sharded, so the answer counts every listener
            expected = int(await client.execute_command("SPUBLISH", keys.control, request))
        else:
            expected = int(await client.publish(keys.control, request))
        deadline = loop.time() + timeout
        try:
            while len(answers) < expected:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                item = await client.blpop([reply], timeout=max(0.01, remaining))
                if item is None:
                    break
                try:
                    answer = json.loads(_text(item[1]))
                except ValueError:
                    continue
                if isinstance(answer, dict):
                    answers.append(answer)
        finally:
            await client.delete(reply)
    if len(answers) < expected:
        logger.warning(
            "%d of %d node(s) did not answer %r within %.1fs", expected - len(answers), expected, op, timeout
        )
    return answers


class ControlListener:
    """A server process's side: answer ``counts`` from its hub, close sockets on ``terminate``."""

    def __init__(self, backend: RedisBackend, hub: Any) -> None:
        self.backend = backend
        self.hub = hub
        self.ready = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.1
        failing = False
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis may come back
                if not failing:
                    logger.warning("control link to Redis failed: %r; reconnecting", exc)
                failing = True
            self.ready.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _listen(self) -> None:
        async with self.backend.session() as client:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            sharded = bool(self.backend.cluster_nodes)  # Redis Cluster: SSUBSCRIBE at the owner
            try:
                if sharded:
                    await client.initialize()  # the slot map, which a fresh client reads lazily
                    await pubsub.ssubscribe(self.backend.keys.control)
                else:
                    await pubsub.subscribe(self.backend.keys.control)
                self.ready.set()
                loop = asyncio.get_running_loop()
                last = loop.time()
                while True:
                    # A short read timeout (not redis-py's socket timeout) keeps an idle link
                    # from timing out; the ping finds a link that died silently.
                    if sharded:
                        message = await pubsub.get_sharded_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                    else:
                        message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") in ("message", "smessage"):
                        await self._answer(client, message.get("data"))
                    if not sharded and loop.time() - last >= PING_INTERVAL:
                        await pubsub.ping()
                        last = loop.time()
            finally:
                await pubsub.aclose()

    async def _answer(self, client: Any, data: Any) -> None:
        try:
            request = json.loads(_text(data))
            op, reply = request["op"], request["reply"]
        except (ValueError, KeyError, TypeError):
            logger.warning("dropping a malformed control request")
            return
        if not isinstance(reply, str) or not reply.startswith(self.backend.keys.control_reply("")):
            return
        answer: dict[str, Any] = {"node": self.hub.node_id}
        try:
            if op == "counts":
                answer["channels"] = self.hub.channel_counts(str(request.get("prefix") or ""))
            elif op == "terminate":
                app = request.get("app")
                answer["closed"] = await self.hub.terminate_user(
                    str(request.get("user")), None if app is None else str(app)
                )
            else:
                answer["error"] = f"unknown operation {str(op)[:40]!r}"
        except Exception as exc:  # noqa: BLE001 - the asker still gets an answer
            logger.exception("control request %r failed", op)
            answer["error"] = repr(exc)
        pipe = client.pipeline(transaction=False)
        pipe.rpush(reply, json.dumps(answer, separators=(",", ":")))
        pipe.pexpire(reply, REPLY_TTL_MS)
        await pipe.execute()
