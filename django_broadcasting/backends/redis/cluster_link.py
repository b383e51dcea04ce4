"""``ShardLink``: one sharded pub/sub connection from a server process to one cluster primary.

``ClusterTransport`` (``cluster_transport.py``) keeps one per shard it needs. A link sends
``SSUBSCRIBE`` / ``SUNSUBSCRIBE`` for its channels, reads replies the way the standalone
transport does (``_PubSubLink``: hiredis parses each chunk in the socket's callback; PING after a
quiet spell, a silent link is a dead one), hands each ``smessage`` to the transport, and tells the transport when the
node ends a subscription it did not ask to end (the slot moved), refuses one (``-MOVED``), or
the connection dies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from .transport import _disconnect, _PubSubLink, hiredis

if TYPE_CHECKING:
    from .cluster_transport import ClusterTransport

logger = logging.getLogger("django_broadcasting.server")

Address = tuple[str, int]


class ShardLink:
    """One pub/sub connection to one primary, carrying the shard channels this process needs there."""

    def __init__(self, transport: ClusterTransport, address: Address) -> None:
        self.transport = transport
        self.address = address
        self.channels: set[str] = set()
        self.closed = False
        self._names: dict[bytes, str] = {}  # shard channel name -> channel
        self._pending: list[tuple[bytes, asyncio.Future]] = []  # SSUBSCRIBEs awaiting their reply
        self._leaving: dict[bytes, int] = {}  # SUNSUBSCRIBEs we sent, not yet confirmed
        self._conn: Any = None
        self._task: asyncio.Task | None = None
        self._link: _PubSubLink | None = None

    async def open(self) -> None:
        conn = self.transport.driver.new_connection(self.address)
        await conn.connect()
        self._conn = conn
        # Take the socket's reads over before anything is sent on it (``transport._PubSubLink``).
        self._link = _PubSubLink.attach(conn, self._reply) if hiredis is not None else None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
        if self._conn is not None:
            await _disconnect(self._conn)
        self._fail_pending()

    def _fail_pending(self) -> None:
        for _, future in self._pending:
            if not future.done():
                future.set_result(False)
        self._pending.clear()

    async def ssubscribe(self, channels: list[str]) -> set[str]:
        """SSUBSCRIBE each channel (one command per channel: their slots may differ); return
        those the node confirmed within the socket timeout."""
        keys = self.transport.keys
        loop = asyncio.get_running_loop()
        waiting = []
        for channel in channels:
            name = keys.pubsub(channel).encode()
            self._names[name] = channel
            self.channels.add(channel)
            future = loop.create_future()
            self._pending.append((name, future))
            waiting.append((channel, future))
        await self._conn.send_packed_command(
            self._conn.pack_commands([("SSUBSCRIBE", self.transport.keys.pubsub(c)) for c in channels]),
            check_health=False,
        )
        await asyncio.wait([f for _, f in waiting], timeout=self.transport.driver.socket_timeout)
        confirmed = {c for c, f in waiting if f.done() and f.result() is True}
        for channel in channels:
            if channel not in confirmed:
                self.channels.discard(channel)
        return confirmed

    async def sunsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        name = self.transport.keys.pubsub(channel).encode()
        self._names.pop(name, None)  # bounded by the channels in use, not by every one ever used
        self._leaving[name] = self._leaving.get(name, 0) + 1
        try:
            await self._conn.send_command("SUNSUBSCRIBE", name, check_health=False)
        except Exception as exc:  # noqa: BLE001 - the connection is failing; it closes anyway
            logger.debug("SUNSUBSCRIBE %s failed: %r", channel, exc)

    # -- reading -------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: the channels move or reconnect
            if not self.closed:
                self.closed = True
                self._fail_pending()
                await _disconnect(self._conn)
                self.transport.link_lost(self, exc)

    async def _read(self) -> None:
        interval = min(5.0, self.transport.driver.socket_timeout / 2)
        link = self._link
        if link is None:
            return await self._read_responses(interval)
        # The standalone transport's fast path: each chunk the socket receives is parsed by hiredis
        # and every reply handled in that same callback.
        watchdog = asyncio.get_running_loop().create_task(link.watch(self._conn, interval))
        try:
            await link.closed
        finally:
            watchdog.cancel()
            link.detach()

    async def _read_responses(self, interval: float) -> None:
        from redis.exceptions import ResponseError

        last_rx = time.monotonic()
        while True:
            try:
                response = await self._conn.read_response(
                    timeout=interval, disconnect_on_error=False, push_request=True
                )
            except ResponseError as exc:
                response = exc
            if response is None:
                if time.monotonic() - last_rx > 2 * interval:
                    raise ConnectionError("went silent")
                await self._conn.send_command("PING", check_health=False)
                continue
            last_rx = time.monotonic()
            self._reply(response)

    def _reply(self, response: Any) -> None:
        if isinstance(response, Exception):  # -MOVED / -ASK / -CLUSTERDOWN for an SSUBSCRIBE
            if self._pending:
                name, future = self._pending.pop(0)
                if not future.done():
                    future.set_result(False)
                self.transport.moved(self, [self._names.get(name, "")], f"{response}")
            else:
                logger.warning("Redis Cluster pub/sub error reply: %s", response)
            return
        if not isinstance(response, list) or not response:
            return
        kind = response[0]
        if kind == b"smessage":
            self.transport._message(response[2])
        elif kind == b"ssubscribe":
            for index, (name, future) in enumerate(self._pending):
                if name == response[1]:
                    del self._pending[index]
                    if not future.done():
                        future.set_result(True)
                    break
        elif kind == b"sunsubscribe":
            name = response[1]
            if self._leaving.get(name):
                self._leaving[name] -= 1
                if not self._leaving[name]:
                    del self._leaving[name]
                return
            channel = self._names.get(name)
            if channel is not None and channel in self.channels:
                # Not asked for: the node no longer serves the slot (moved, or failed over).
                self.transport.moved(
                    self, [channel], f"slot moved away from {self.address[0]}:{self.address[1]}"
                )
