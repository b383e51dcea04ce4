"""``RedisTransport``: one Redis pub/sub connection per server process.

The hub subscribes the process to ``{prefix}{channel}`` when its first local socket joins a
channel and unsubscribes after the last one leaves, so a broadcast costs one PUBLISH and one
pub/sub delivery per subscribed process, never one per socket.

Faults: the reader keeps the connection alive with PINGs and treats silence as a dead link.
When Redis goes away it reconnects with capped, jittered backoff, subscribes again to every
channel its sockets still need, and catches up: messages published while the link was down
are read back from the history (ids ``"<epoch>:<offset>"``, see ``redis_history.py``) and
delivered before the live ones that arrived meanwhile, without duplicates. A jump in a
channel's offsets on a live link is filled the same way. Nothing needs a restart. Publishers
see ``TransportError`` while Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

try:
    import hiredis
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency; the slow path still works
    hiredis = None

from ...conf import broadcasting_settings
from ...messages import transport_payload
from ..base import OnMessage
from ..history import ReplayBuffer, is_newer, parse_id

if TYPE_CHECKING:
    from . import RedisBackend

logger = logging.getLogger("django_broadcasting.server")

_MAX_BACKOFF = 2.0


_newer = is_newer  # older name


def _payload_id(payload: dict[str, Any]) -> object:
    return payload.get("id")


def _fingerprint(payload: dict[str, Any]) -> tuple[Any, ...]:
    """What tells a message from another under the same id (a new primary may reuse offsets)."""
    return (payload.get("event"), payload.get("timestamp"), payload.get("data_json"))


class RedisTransport:
    """Receive broadcasts through Redis pub/sub, one subscription per channel per process."""

    def __init__(self, driver: RedisBackend) -> None:
        self.driver = driver
        self.keys = driver.keys
        self.wanted: set[str] = set()  # channels this process's sockets need
        self.connected = False
        self.reconnects = 0
        self.last_error: str | None = None
        self._conn: Any = None
        self._on_message: OnMessage | None = None
        self._task: asyncio.Task | None = None
        self._catch_up_task: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._confirm: dict[bytes, list[asyncio.Future]] = {}
        self._last: dict[str, str] = {}  # channel -> id of the last message delivered
        self._floor: dict[str, str] = {}  # channel -> newest id when this process subscribed
        self._wanted_at: dict[str, float] = {}  # channels wanted while the link was down: since when
        self._buffers: dict[str, ReplayBuffer] = {}  # channels catching up
        self._rounds: dict[str, int] = {}  # channel -> the newest catch-up of it (only it delivers)
        self._gap_fills: set[asyncio.Task] = set()
        # Per channel, what the last catch-up delivered from the history (id -> fingerprint)
        # until the live stream moves past it: a late live copy of one of them is dropped.
        self._replayed: dict[str, dict[str, tuple[Any, ...]]] = {}

    @property
    def state(self) -> dict[str, Any]:
        """The link's health, shown in ``hub.stats()["transport_state"]``."""
        return {
            "connected": self.connected,
            "reconnects": self.reconnects,
            "channels": len(self.wanted),
            "last_error": self.last_error,
        }

    @property
    def history(self) -> Any:
        if broadcasting_settings.HISTORY_ENABLED and broadcasting_settings.HISTORY_SIZE:
            return self.driver.create_history()
        return None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, on_message: OnMessage) -> None:
        self._on_message = on_message
        self._task = asyncio.get_running_loop().create_task(self._run())
        # Give the first connection a moment so early subscriptions are confirmed; a Redis
        # that is down must not hold the server up (the reader keeps trying).
        try:
            await asyncio.wait_for(self._ready.wait(), timeout=min(2.0, self.driver.socket_timeout))
        except TimeoutError:
            logger.warning(
                "Redis pub/sub not reachable yet (%s); retrying in the background", self.last_error
            )

    async def stop(self) -> None:
        for task in (self._task, self._catch_up_task, *self._gap_fills):
            if task is not None:
                task.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            await _disconnect(conn)
        self.connected = False

    # -- subscriptions -------------------------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        """Subscribe this process to ``channel``; wait for Redis to confirm (bounded)."""
        self.wanted.add(channel)
        conn = self._conn
        if conn is None:
            self._wanted_at.setdefault(channel, time.time())
            return  # the reader subscribes to everything wanted when it reconnects
        name = self.keys.pubsub(channel).encode()
        future = asyncio.get_running_loop().create_future()
        self._confirm.setdefault(name, []).append(future)
        try:
            await conn.send_command("SUBSCRIBE", name, check_health=False)
            await asyncio.wait_for(future, timeout=self.driver.socket_timeout)
        except Exception as exc:  # noqa: BLE001 - the reconnect path resubscribes
            logger.warning("SUBSCRIBE %s not confirmed: %r", channel, exc)
            self._wanted_at.setdefault(channel, time.time())
            return
        history = self.history
        if history is not None and channel not in self._last:
            # Where this process joined the channel's history: if the link drops before any
            # message arrives, the catch-up starts here.
            try:
                head = await history.head(channel)
            except Exception:  # noqa: BLE001 - only a catch-up aid
                head = None
            if head is not None and channel in self.wanted:
                self._floor.setdefault(channel, head)

    async def unsubscribe(self, channel: str) -> None:
        self.wanted.discard(channel)
        self._last.pop(channel, None)
        self._floor.pop(channel, None)
        self._wanted_at.pop(channel, None)
        self._buffers.pop(channel, None)
        self._replayed.pop(channel, None)
        self._rounds.pop(channel, None)
        conn = self._conn
        if conn is not None:
            try:
                await conn.send_command("UNSUBSCRIBE", self.keys.pubsub(channel), check_health=False)
            except Exception as exc:  # noqa: BLE001 - a new connection starts without it anyway
                logger.debug("UNSUBSCRIBE %s failed: %r", channel, exc)

    # -- the reader ----------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = 0.05
        first = True
        while True:
            conn = self.driver.new_connection()
            link = None
            try:
                await conn.connect()
                # Take the socket's reads over before anything is sent on it (see _PubSubLink).
                link = _PubSubLink.attach(conn, self._reply) if hiredis is not None else None
                channels = sorted(self.wanted)
                if not first:
                    for channel in channels:  # live messages wait until the history is read
                        self._buffers.setdefault(channel, ReplayBuffer())
                names = [self.keys.pubsub(c).encode() for c in channels]
                futures = []
                for name in names:
                    future = asyncio.get_running_loop().create_future()
                    self._confirm.setdefault(name, []).append(future)
                    futures.append(future)
                if names:
                    await conn.send_command("SUBSCRIBE", *names, check_health=False)
                # Sockets may have come and gone while SUBSCRIBE was on its way: square the
                # connection with what is wanted now (nothing awaits between here and the
                # assignment below, after which subscribe()/unsubscribe() use it directly).
                extra = sorted(self.wanted - set(channels))
                stale = sorted(set(channels) - self.wanted)
                self._conn = conn
                if extra:
                    for channel in extra:
                        self._buffers.setdefault(channel, ReplayBuffer())
                        future = asyncio.get_running_loop().create_future()
                        self._confirm.setdefault(self.keys.pubsub(channel).encode(), []).append(future)
                        futures.append(future)
                    channels += extra
                    await conn.send_command(
                        "SUBSCRIBE", *[self.keys.pubsub(c) for c in extra], check_health=False
                    )
                if stale:
                    await conn.send_command(
                        "UNSUBSCRIBE", *[self.keys.pubsub(c) for c in stale], check_health=False
                    )
                self.connected = True
                self._ready.set()
                if not first:
                    self.reconnects += 1
                    logger.warning("Redis pub/sub reconnected; resubscribed %d channel(s)", len(channels))
                if not first or extra:  # catch up on the channels that have a buffer
                    self._cancel_catch_up()
                    self._catch_up_task = asyncio.get_running_loop().create_task(
                        self._catch_up(channels, futures)
                    )
                first = False
                backoff = 0.05
                await self._read(conn, link)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                if self.connected or self.last_error is None:
                    logger.warning("Redis pub/sub connection lost: %r; reconnecting", exc)
                self.last_error = repr(exc)
                first = False
            finally:
                self._conn = None
                self.connected = False
                # A catch-up still reading the history would merge it with buffers that miss
                # what this connection never received: stop it; the next connection catches
                # up every channel that still has a buffer, from where delivery stopped.
                self._cancel_catch_up()
                for waiting in self._confirm.values():
                    for future in waiting:
                        if not future.done():
                            future.set_exception(ConnectionError("Redis pub/sub connection lost"))
                self._confirm.clear()
                await _disconnect(conn)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _cancel_catch_up(self) -> None:
        task, self._catch_up_task = self._catch_up_task, None
        if task is not None:
            task.cancel()

    async def _read(self, conn: Any, link: _PubSubLink | None) -> None:
        # PING after a quiet spell; a link that stays silent after that is dead even if
        # TCP has not noticed (a paused or partitioned Redis).
        interval = min(5.0, self.driver.socket_timeout / 2)
        if link is None:
            return await self._read_responses(conn, interval)
        # The fast path: the connection's socket hands what arrives straight to a hiredis parser
        # and every reply in it is handled in that same callback: no stream read, no future and
        # no task step per message, and no redis-py read (with its own timeout, push handling and
        # logger lookup) per reply.
        watchdog = asyncio.get_running_loop().create_task(link.watch(conn, interval))
        try:
            await link.closed
        finally:
            watchdog.cancel()
            link.detach()

    async def _read_responses(self, conn: Any, interval: float) -> None:
        # Without hiredis (or a redis-py whose connection hides its stream): one read per reply.
        last_rx = time.monotonic()
        while True:
            # With an explicit timeout redis-py returns None when nothing arrived.
            response = await conn.read_response(
                timeout=interval, disconnect_on_error=False, push_request=True
            )
            if response is None:
                if time.monotonic() - last_rx > 2 * interval:
                    raise ConnectionError("Redis pub/sub connection went silent")
                await conn.send_command("PING", check_health=False)
                continue
            last_rx = time.monotonic()
            self._reply(response)

    def _reply(self, response: Any) -> None:
        if type(response) is list and len(response) == 3 and response[0] == b"message":
            self._message(response[2])  # every broadcast: tested first
            return
        if not isinstance(response, list) or not response:
            if isinstance(response, Exception):
                logger.warning("Redis pub/sub error reply: %s", response)
            return  # PONG outside subscribed mode
        kind = response[0]
        if kind == b"message":
            self._message(response[2])
        elif kind == b"subscribe":
            waiting = self._confirm.get(response[1])
            if waiting:
                future = waiting.pop(0)
                if not waiting:
                    del self._confirm[response[1]]
                if not future.done():
                    future.set_result(True)

    def _message(self, data: bytes) -> None:
        # The path of every broadcast: kept to one call into the hub (``_deliver`` inlined).
        try:
            message_id, _, body = data.decode().partition(" ")
            payload = transport_payload(body)
            channel = payload["channel"]
        except (ValueError, KeyError, TypeError):
            logger.exception("dropping a malformed message from Redis")
            return
        if message_id:
            payload["id"] = message_id
        if self._buffers:
            buffer = self._buffers.get(channel)
            if buffer is not None:
                buffer.append(payload)
                return
        if message_id:
            last = self._last.get(channel)
            if last is not None:
                # The usual case without a call: the next offset of the same epoch.
                epoch, _, offset = message_id.rpartition(":")
                last_epoch, _, last_offset = last.rpartition(":")
                if (
                    epoch != last_epoch
                    or not offset.isdecimal()
                    or not last_offset.isdecimal()
                    or int(offset) != int(last_offset) + 1
                ) and not self._in_sequence(channel, last, message_id, payload):
                    return
                if self._replayed:  # the live stream is past what a catch-up replayed
                    self._replayed.pop(channel, None)
            self._last[channel] = message_id
        try:
            self._on_message(payload)  # type: ignore[misc]
        except Exception:
            logger.exception("dropping a broadcast the hub could not deliver")

    def _in_sequence(self, channel: str, last: str, message_id: str, payload: dict[str, Any]) -> bool:
        """Whether ``message_id`` directly follows ``last``, the channel's last delivered id.

        Offsets of one epoch count up by one per message (the publish script numbers them), so
        a jump means this link missed messages that Redis accepted (a subscription on a replica
        still syncing after a failover, a resubscription racing a publish): they are read back
        from the history before this one is delivered. An offset at or below the last one is
        delivered without moving the position (a duplicate is harmless, a gap is not: after a
        crash failover the new primary may number new messages with offsets the old one had
        used). Ids that are not ``epoch:offset`` pass.
        """
        epoch, _, offset = message_id.rpartition(":")
        last_epoch, _, last_offset = last.rpartition(":")
        try:
            expected = int(last_offset) + 1 if epoch == last_epoch else 1
            number = int(offset)
        except ValueError:
            return True
        if number == expected or (number < expected and epoch != last_epoch):
            return True
        if number < expected:
            replayed = self._replayed.get(channel)
            if replayed is not None and replayed.get(message_id) == _fingerprint(payload):
                # The live copy of a message the catch-up already delivered from the history:
                # the history read (another connection) answered before this link brought it.
                return False
            self._on_deliver(payload)
            return False
        logger.warning(
            "%d message(s) on %s did not arrive live (%s after %s); reading them from the history",
            number - expected,
            channel,
            message_id,
            last,
        )
        self._buffers[channel] = ReplayBuffer([payload])
        task = asyncio.get_running_loop().create_task(self._catch_up([channel], []))
        self._gap_fills.add(task)
        task.add_done_callback(self._gap_fills.discard)
        return False

    def _deliver(self, channel: str, payload: dict[str, Any]) -> None:
        message_id = payload.get("id")
        if message_id is not None:
            self._last[channel] = message_id
        self._on_deliver(payload)

    def _on_deliver(self, payload: dict[str, Any]) -> None:
        try:
            self._on_message(payload)
        except Exception:
            logger.exception("dropping a broadcast the hub could not deliver")

    # -- catching up after a reconnect -----------------------------------------------------
    async def _catch_up(self, channels: list[str], confirmations: list[asyncio.Future]) -> None:
        if confirmations:
            _, pending = await asyncio.wait(confirmations, timeout=self.driver.socket_timeout)
            if pending:
                # Reading the history before Redis confirmed the subscription could miss what is
                # published in between: treat the link as dead; the next one catches up.
                conn = self._conn
                if conn is not None:
                    await _disconnect(conn)
                return
            if any(f.exception() is not None for f in confirmations):
                return  # the link broke again: the next connection catches up (buffers kept)
        history = self.history
        rounds = {}
        for channel in channels:
            rounds[channel] = self._rounds[channel] = self._rounds.get(channel, 0) + 1
        for channel in channels:
            if channel not in self._buffers:
                continue
            since = self._last.get(channel) or self._floor.get(channel)
            position = parse_id(since)
            entries: list[dict[str, Any]] = []
            wanted_at = self._wanted_at.pop(channel, None)
            if history is not None and position is not None:
                entries = await self._missed(history, channel, position)
            elif history is not None and wanted_at is not None:
                # Subscribed while Redis was unreachable: no position to resume from, so take
                # what was published since then (by the publishers' clocks, with a second of
                # slack; an extra early message is harmless, a missing one is not).
                entries = [
                    p
                    for p in await self._missed(history, channel, (None, 0))
                    if _epoch_seconds(p.get("timestamp")) >= wanted_at - 1.0
                ]
            # Nothing below awaits: replay, then the buffered live messages not yet covered.
            if self._rounds.get(channel) != rounds[channel]:
                continue  # a newer catch-up of this channel began meanwhile: it delivers the buffer
            del self._rounds[channel]
            buffer = self._buffers.pop(channel, None)
            if buffer is None or channel not in self.wanted:
                continue
            replayed = {p["id"]: _fingerprint(p) for p in entries if p.get("id")}
            if replayed:
                self._replayed[channel] = replayed
            else:
                self._replayed.pop(channel, None)
            for payload in buffer.merge(entries, position, _payload_id):
                self._deliver(channel, payload)

    async def _missed(
        self, history: Any, channel: str, position: tuple[str | None, int]
    ) -> list[dict[str, Any]]:
        # Pooled connections of the publishing client may be as stale as the pub/sub one
        # was: a few quick attempts before giving up on this channel's catch-up.
        for attempt in range(5):
            try:
                window = await history.read(channel, position[1])
                if position[0] is not None and window.epoch is not None and window.epoch != position[0]:
                    # Redis lost the history (a restart): the new epoch began after the link
                    # dropped, so all of it is news to this process.
                    window = await history.read(channel, 0)
                    expected = window.offset
                else:
                    expected = window.offset - position[1]
                entries = [p for n, p in window.entries if n <= window.offset]
                if position[0] is not None and len(entries) < expected:
                    logger.warning(
                        "%d message(s) on %s were trimmed before this process caught up",
                        expected - len(entries),
                        channel,
                    )
                return entries
            except Exception as exc:  # noqa: BLE001
                if attempt == 4:
                    logger.warning("could not read the history of %s: %r", channel, exc)
                    return []
                await asyncio.sleep(0.05 * 2**attempt)
        return []


class _PubSubLink(asyncio.Protocol):
    """Reads a redis-py pub/sub connection's socket directly: each chunk is parsed at once.

    Installed on the connection's transport in place of its ``StreamReaderProtocol`` right
    after ``connect()`` (nothing is buffered in the stream then: the connection's handshake
    replies were all read). Writes still go through redis-py (``send_command``); the original
    protocol keeps receiving the transport's flow-control and close callbacks, so redis-py's
    ``disconnect()`` works as before. ``closed`` resolves, with an error, when the link ends.
    """

    def __init__(self, transport: asyncio.Transport, original: asyncio.BaseProtocol, on_reply: Any) -> None:
        self.transport = transport
        self.original = original
        self.on_reply = on_reply
        self.parser = hiredis.Reader()
        self.last_rx = time.monotonic()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The reader may be gone when the link fails (a fault before reading began).
        self.closed.add_done_callback(lambda f: f.cancelled() or f.exception())

    @classmethod
    def attach(cls, conn: Any, on_reply: Any) -> _PubSubLink | None:
        writer = getattr(conn, "_writer", None)
        reader = getattr(conn, "_reader", None)
        transport = getattr(writer, "transport", None)
        if not isinstance(reader, asyncio.StreamReader) or transport is None or reader._buffer:
            return None  # an unknown connection type: the portable path reads it
        link = cls(transport, transport.get_protocol(), on_reply)
        transport.set_protocol(link)
        return link

    def detach(self) -> None:
        if self.transport.get_protocol() is self:
            self.transport.set_protocol(self.original)

    def fail(self, exc: BaseException) -> None:
        if not self.closed.done():
            self.closed.set_exception(exc)

    async def watch(self, conn: Any, interval: float) -> None:
        """PING after ``interval`` of quiet; fail the link when a PING gets no answer within ``interval``.

        One timer for the link instead of a timeout per read. Silence alone is never enough: a
        check that wakes late (a loaded machine) must not take a healthy, idle link for a dead
        one before it was even asked. Anything received after the PING counts as an answer.
        """
        pinged_at: float | None = None
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if pinged_at is not None:
                if self.last_rx < pinged_at:
                    self.fail(ConnectionError("Redis pub/sub connection went silent"))
                    return
                pinged_at = None
            if now - self.last_rx >= interval:
                pinged_at = now
                try:
                    await conn.send_command("PING", check_health=False)
                except Exception as exc:  # noqa: BLE001 - the read fails too, and reconnects
                    self.fail(ConnectionError(f"Redis pub/sub PING failed: {exc!r}"))
                    return

    # -- asyncio.Protocol --------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        parser = self.parser
        try:
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                self.on_reply(reply)
        except Exception as exc:  # noqa: BLE001 - a protocol error: drop the link, reconnect
            self.fail(ConnectionError(f"Redis pub/sub protocol error: {exc!r}"))
            self.transport.abort()

    def eof_received(self) -> bool | None:
        self.fail(ConnectionError("Redis closed the pub/sub connection"))
        return self.original.eof_received()  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"Redis pub/sub connection lost: {exc!r}" if exc else "Redis closed the pub/sub connection"
        self.fail(ConnectionError(reason))
        self.original.connection_lost(exc)

    def pause_writing(self) -> None:
        self.original.pause_writing()

    def resume_writing(self) -> None:
        self.original.resume_writing()


def _epoch_seconds(timestamp: Any) -> float:
    try:
        return datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


async def _disconnect(conn: Any) -> None:
    try:
        await conn.disconnect()
    except Exception:  # noqa: BLE001 - it is gone either way
        pass
