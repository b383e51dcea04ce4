"""``ClusterTransport``: sharded pub/sub on a Redis Cluster, one connection per shard in use.

A server process subscribes with ``SSUBSCRIBE {prefix}{<channel>}`` on the primary that owns the
channel's slot (the shard channel carries the channel as its hash tag, like the channel's history
keys, see ``cluster.py``). It keeps one pub/sub connection per shard that owns at least one of its
channels: opened with the first such channel, closed after the last one leaves. The receiving
path is the standalone transport's (``transport.py``): hiredis parses what arrived in one go,
and each ``smessage`` goes straight to the hub.

Topology changes, all handled the same way (the channel is *lost*, then *repaired*):

- a slot moves (resharding): the old owner ends our subscription with an unsolicited
  ``sunsubscribe``; an ``SSUBSCRIBE`` sent to a node that does not own the slot is answered
  ``-MOVED``;
- a primary fails or hands over (``CLUSTER FAILOVER``): its connection drops, or it turns
  replica and unsubscribes us.

A lost channel is subscribed again at the owner named by a fresh ``CLUSTER SLOTS`` (retried with
capped, jittered backoff while the cluster elects a new primary), and caught up from its history
exactly as the standalone transport does after a reconnect: live messages wait in a buffer while
the missed ones are read back, then both are delivered in order without duplicates.

During a failover the node asked for the slot map may not know the new primary yet, so a repair
can land on the old one, which no longer receives the shard's messages and never says so. The
routes are therefore checked against a fresh slot map a few times after every repair (0.25 s to
8 s later) and every ``ROUTE_CHECK_INTERVAL`` seconds otherwise; a channel found on a node that no
longer owns its slot is moved like any other.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from ..history import ReplayBuffer
from .cluster import key_slot, parse_slots
from .cluster_link import Address, ShardLink
from .transport import RedisTransport, _disconnect

if TYPE_CHECKING:
    from . import RedisBackend

logger = logging.getLogger("django_broadcasting.server")

#: The longest wait between two attempts to resubscribe lost channels: an election takes seconds, and
#: each attempt is one CLUSTER SLOTS and one SSUBSCRIBE, so retrying often costs little and shortens
#: the gap the history has to cover.
_REPAIR_MAX_BACKOFF = 0.5
#: Seconds between checks of the subscriptions' routes against the slot map, in steady state.
ROUTE_CHECK_INTERVAL = 10.0
#: After a repair, the routes are checked again this many seconds later (a failover settling).
_SETTLE_CHECKS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class ClusterTransport(RedisTransport):
    """Receive broadcasts through sharded pub/sub: one subscription per channel per process."""

    def __init__(self, driver: RedisBackend) -> None:
        super().__init__(driver)
        self._owners: list[Address | None] = []  # slot -> primary, from CLUSTER SLOTS
        self._links: dict[Address, ShardLink] = {}
        self._route: dict[str, ShardLink] = {}  # channel -> the link it is subscribed on
        self._lost: set[str] = set()  # wanted channels without a subscription (to repair)
        self._link_lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._settle = asyncio.Event()  # a repair happened: check the routes soon, several times
        self._check_task: asyncio.Task | None = None
        self.moves = 0  # subscriptions moved to another shard (resharding, failover)

    @property
    def state(self) -> dict[str, Any]:
        return {
            **super().state,
            "connected": bool(self._owners) and not self._lost,
            "shards": len(self._links),
            "moves": self.moves,
        }

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, on_message: Any) -> None:
        self._on_message = on_message
        self._task = asyncio.get_running_loop().create_task(self._repair_loop())
        self._check_task = asyncio.get_running_loop().create_task(self._route_checks())
        try:
            await asyncio.wait_for(self._refresh(), timeout=min(2.0, self.driver.socket_timeout))
            self.connected = True
        except Exception as exc:  # noqa: BLE001 - a cluster that is down must not hold the server up
            self.last_error = repr(exc)
            logger.warning("Redis Cluster not reachable yet (%r); retrying in the background", exc)

    async def stop(self) -> None:
        for task in (self._task, self._check_task, *self._gap_fills):
            if task is not None:
                task.cancel()
        links, self._links = list(self._links.values()), {}
        self._route.clear()
        for link in links:
            await link.close()
        self.connected = False

    # -- subscriptions -------------------------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        """SSUBSCRIBE ``channel`` on the shard that owns it; wait for the confirmation (bounded)."""
        self.wanted.add(channel)
        try:
            link = await self._link_for(channel)
            ok = await link.ssubscribe([channel])
        except Exception as exc:  # noqa: BLE001 - the repair loop subscribes it
            ok, self.last_error = [], repr(exc)
        if channel not in ok:
            if channel in self.wanted:
                self._wanted_at.setdefault(channel, time.time())
                self._lose([channel])
            return
        if channel not in self.wanted:  # left while the SSUBSCRIBE was on its way
            await self._drop(channel)
            return
        self._route[channel] = link
        history = self.history
        if history is not None and channel not in self._last:
            try:  # where this process joined the history, should the link drop before a message
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
        self._lost.discard(channel)
        await self._drop(channel)

    async def _drop(self, channel: str) -> None:
        link = self._route.pop(channel, None)
        if link is None:
            return
        await link.sunsubscribe(channel)
        if not link.channels and self._links.get(link.address) is link:
            del self._links[link.address]  # the last channel of this shard: close its connection
            await link.close()

    # -- topology ------------------------------------------------------------------------
    def _slot(self, channel: str) -> int:
        return key_slot(self.keys.pubsub(channel))

    async def _refresh(self) -> None:
        """Read the slot map (``CLUSTER SLOTS``) from any node that answers."""
        async with self._refresh_lock:
            known = [*self._links, *{a for a in self._owners if a is not None}]
            candidates = list(dict.fromkeys([*known, *self.driver.cluster_nodes]))
            random.shuffle(candidates)
            error: Exception | None = None
            for address in candidates:
                conn = self.driver.new_connection(address)
                try:
                    await conn.connect()
                    await conn.send_command("CLUSTER", "SLOTS", check_health=False)
                    reply = await conn.read_response()
                except Exception as exc:  # noqa: BLE001 - try the next node
                    error = exc
                    continue
                finally:
                    await _disconnect(conn)
                owners = parse_slots(reply, address)
                self._owners = owners
                return
            raise ConnectionError(f"no Redis Cluster node answered CLUSTER SLOTS: {error!r}")

    async def _link_for(self, channel: str) -> ShardLink:
        if not self._owners:
            await self._refresh()
        owner = self._owners[self._slot(channel)]
        if owner is None:  # a slot no primary serves (a failover in progress)
            await self._refresh()
            owner = self._owners[self._slot(channel)]
            if owner is None:
                raise ConnectionError(f"no primary serves the slot of {channel!r}")
        async with self._link_lock:
            link = self._links.get(owner)
            if link is None or link.closed:
                link = ShardLink(self, owner)
                await link.open()
                self._links[owner] = link
        return link

    # -- losing and repairing subscriptions ----------------------------------------------
    def _lose(self, channels: list[str], reason: str = "") -> None:
        """These channels have no subscription any more: subscribe them again, then catch up."""
        lost = [c for c in channels if c in self.wanted]
        for channel in lost:
            self._route.pop(channel, None)
            if channel not in self._last and channel not in self._floor:
                self._wanted_at.setdefault(channel, time.time())
        if lost:
            if reason:
                logger.warning("sharded subscription(s) lost (%s): %d channel(s)", reason, len(lost))
            self._lost.update(lost)
            self._wake.set()

    def link_lost(self, link: ShardLink, exc: BaseException) -> None:
        """A shard's connection ended (the primary failed, or went silent)."""
        if self._links.get(link.address) is link:
            del self._links[link.address]
        self.last_error = repr(exc)
        self._lose(sorted(link.channels), f"connection to {link.address[0]}:{link.address[1]}: {exc!r}")

    def moved(self, link: ShardLink, channels: list[str], reason: str) -> None:
        """The owner ended or refused these subscriptions (slot moved): resubscribe elsewhere."""
        self._owners = []  # stale: the next repair reads the slot map again
        for channel in channels:
            link.channels.discard(channel)
        self._lose(channels, reason)

    async def _repair_loop(self) -> None:
        backoff = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._lost:
                try:
                    await self._repair()
                    backoff = 0.05
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - keep trying; the cluster may be electing
                    self.last_error = repr(exc)
                    logger.debug("sharded resubscribe failed: %r", exc)
                if self._lost:
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.5))
                    backoff = min(backoff * 2, _REPAIR_MAX_BACKOFF)

    async def _repair(self) -> None:
        await self._refresh()
        todo = sorted(c for c in self._lost if c in self.wanted)
        self._lost.clear()
        by_owner: dict[Address, list[str]] = {}
        for channel in todo:
            owner = self._owners[self._slot(channel)]
            if owner is None:
                self._lost.add(channel)
            else:
                by_owner.setdefault(owner, []).append(channel)
        error: Exception | None = None
        for channels in by_owner.values():
            try:
                link = await self._link_for(channels[0])
                for channel in channels:  # live messages wait until the history is read
                    self._buffers.setdefault(channel, ReplayBuffer())
                confirmed = await link.ssubscribe(channels)
            except Exception as exc:  # noqa: BLE001 - this shard later; the others now
                self._lost.update(c for c in channels if c in self.wanted)
                error = exc
                continue
            done = [c for c in channels if c in confirmed and c in self.wanted]
            for channel in done:
                self._route[channel] = link
            self._lost.update(c for c in channels if c not in confirmed and c in self.wanted)
            if done:
                self.moves += 1
                self.reconnects += 1
                logger.warning("resubscribed %d channel(s) on %s:%d; catching up", len(done), *link.address)
                self._settle.set()
                await self._catch_up(done, [])
        for address, link in list(self._links.items()):  # shards this process no longer needs
            if not link.channels:
                del self._links[address]
                await link.close()
        self.connected = not self._lost
        if error is not None:
            raise error

    # -- checking the routes -------------------------------------------------------------------
    async def _route_checks(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._settle.wait(), timeout=ROUTE_CHECK_INTERVAL)
            except TimeoutError:
                await self._check_routes()
                continue
            self._settle.clear()
            waited = 0.0
            for at in _SETTLE_CHECKS:
                await asyncio.sleep(at - waited)
                waited = at
                await self._check_routes()

    async def _check_routes(self) -> None:
        """Move every subscription whose node no longer owns the channel's slot (by a fresh map)."""
        if not self._route:
            return
        try:
            await self._refresh()
        except Exception as exc:  # noqa: BLE001 - the next check, or a link error, repairs it
            logger.debug("route check: slot map unavailable: %r", exc)
            return
        stale: dict[ShardLink, list[str]] = {}
        for channel, link in list(self._route.items()):
            owner = self._owners[self._slot(channel)] if self._owners else None
            if owner is not None and owner != link.address:
                stale.setdefault(link, []).append(channel)
        for link, channels in stale.items():
            for channel in channels:
                try:
                    await link.sunsubscribe(channel)
                except Exception:  # noqa: BLE001 - the node may be gone; the subscription moves anyway
                    pass
            self.moved(
                link, channels, f"slot now owned by another node than {link.address[0]}:{link.address[1]}"
            )
