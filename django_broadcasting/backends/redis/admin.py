"""The admin pages across nodes with the ``redis`` backend: debug console and closing sockets.

Layout under the prefix (``RedisKeys``):

- ``bc:console:watch``: exists while a debug console page is open; every poll of the page
  sets it again with a TTL of ``CONSOLE_WATCH_TTL``. Nothing is recorded while it is absent.
- ``bc:console:events``: a stream of console events (field ``e``, the event as JSON), capped
  at ``CONSOLE_STREAM_LENGTH`` entries and expiring ten minutes after the last write.
- ``bc:console:nodes``: a hash ``node -> {"seq", "dropped", "watched", "t"}`` of the nodes
  recording, so the page can say how many servers it hears.

Each server process runs one ``RedisAdminLink``: once a second (twice while recording) it
reads the watch key, turns its hub's recorder on or off and copies new events into the
stream. Readers (an admin page in any process) set the watch and read the stream:
``aread_console``. The link also runs the process's ``ControlListener`` (``control.py``),
which answers channel counts and closes a user's sockets when any process asks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ..base import CONSOLE_WATCH_TTL

if TYPE_CHECKING:
    from . import RedisBackend

logger = logging.getLogger("django_broadcasting.server")

__all__ = ["RedisAdminLink", "aread_console", "CONSOLE_STREAM_LENGTH"]

#: Events the shared console stream keeps (all nodes together; the oldest go first).
CONSOLE_STREAM_LENGTH = 5000
#: How long the stream and the node states outlive the last write.
STREAM_TTL_MS = 600_000
#: A node that has not reported for this long is not counted as recording.
NODE_FRESH_SECONDS = 5.0
#: Events shown when a console page opens (the newest).
OPEN_BACKLOG = 200


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(fields: dict[Any, Any], name: str) -> str | None:
    value = fields.get(name.encode(), fields.get(name))
    return None if value is None else _s(value)


class RedisAdminLink:
    """A server process's side: recording while watched, and answering control requests."""

    def __init__(self, backend: RedisBackend, hub: Any) -> None:
        from .control import ControlListener

        self.backend = backend
        self.hub = hub
        self.flushed = 0  # the newest recorder event copied to the stream
        self.control = ControlListener(backend, hub)
        self._failing = False

    async def wait_ready(self, timeout: float) -> None:
        """Wait (bounded) until the control listener hears questions, so a count asked right after
        this server's first socket counts it; an unreachable Redis only delays the start a little."""
        transport = getattr(self.hub, "transport", None)
        if transport is not None and not getattr(transport, "connected", True):
            return  # Redis is unreachable (the transport said so already): do not delay the server
        try:
            await asyncio.wait_for(self.control.ready.wait(), timeout)
        except TimeoutError:
            logger.warning("control link to Redis not ready yet; retrying in the background")

    async def run(self) -> None:
        control = asyncio.get_running_loop().create_task(self.control.run())
        try:
            await self._poll()
        finally:
            control.cancel()

    async def _poll(self) -> None:
        while True:
            try:
                await self.tick()
                if self._failing:
                    logger.warning("admin link to Redis restored")
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis may come back
                if not self._failing:
                    logger.warning("admin link to Redis failed: %r", exc)
                self._failing = True
            await asyncio.sleep(0.5 if self.hub.console is not None else 1.0)

    async def tick(self) -> None:
        keys = self.backend.keys
        async with self.backend.session() as client:
            pipe = client.pipeline(transaction=False)
            pipe.pttl(keys.console_watch)
            (ttl_ms,) = await pipe.execute()
            if ttl_ms and int(ttl_ms) > 0:
                self.hub.console_watch(int(ttl_ms) / 1000)
            if self.hub.console is not None or self.flushed < self.hub.recorder.seq:
                await self.flush(client)

    async def flush(self, client: Any) -> None:
        """Copy the recorder's new events to the stream; report this node as recording."""
        keys = self.backend.keys
        recorder = self.hub.recorder
        events = recorder.read(self.flushed, limit=recorder.events.maxlen or 1000)
        pipe = client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(
                keys.console_events,
                {"e": json.dumps(event, separators=(",", ":"), default=str)},
                maxlen=CONSOLE_STREAM_LENGTH,
                approximate=True,
            )
        if events:
            self.flushed = events[-1]["seq"]
            pipe.pexpire(keys.console_events, STREAM_TTL_MS)
        state = {**recorder.state(), "t": time.time()}
        pipe.hset(keys.console_nodes, recorder.node, json.dumps(state))
        pipe.pexpire(keys.console_nodes, STREAM_TTL_MS)
        await pipe.execute()


async def aread_console(backend: RedisBackend, after: str | None, limit: int) -> dict[str, Any]:
    """Refresh the watch and read the events after ``after`` (a stream id; empty: the newest)."""
    keys = backend.keys
    async with backend.session() as client:
        pipe = client.pipeline(transaction=False)
        pipe.set(keys.console_watch, "1", px=int(CONSOLE_WATCH_TTL * 1000))
        if after:
            pipe.xrange(keys.console_events, f"({after}", "+", count=limit)
        else:
            pipe.xrevrange(keys.console_events, "+", "-", count=min(limit, OPEN_BACKLOG))
        pipe.hgetall(keys.console_nodes)
        if backend.cluster_nodes:  # redis-py refuses TIME in a cluster pipeline (any node's clock will do)
            _, entries, states = await pipe.execute()
            seconds, micros = await client.time()
        else:
            pipe.time()
            _, entries, states, (seconds, micros) = await pipe.execute()
    if not after:
        entries = list(reversed(entries))
    events = []
    cursor = after or "0-0"
    for entry_id, fields in entries:
        cursor = _s(entry_id)
        raw = _field(fields, "e")
        try:
            event = json.loads(raw) if raw else None
        except ValueError:
            event = None
        if isinstance(event, dict):
            event["sid"] = cursor
            events.append(event)
    now = seconds + micros / 1e6
    nodes = []
    for node, raw in (states or {}).items():
        try:
            state = json.loads(_s(raw))
        except ValueError:
            continue
        if now - float(state.get("t") or 0) <= NODE_FRESH_SECONDS:
            nodes.append({"node": _s(node), **{k: v for k, v in state.items() if k != "t"}})
    nodes.sort(key=lambda n: n["node"])
    return {"cursor": cursor, "events": events, "nodes": nodes}
