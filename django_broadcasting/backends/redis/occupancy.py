"""Cluster-wide channel occupancy in Redis: which nodes hold which channels.

Layout under the prefix:

- ``bc:occupied:{channel}``: a set of the nodes holding a local subscriber of the channel.
- ``bc:node:{node}:occupancy``: a set of the channels a node holds (for reaping).
- ``bc:occupancy-nodes``: a sorted set ``node -> expiry`` (Redis server time, ms), refreshed by
  each node every ``min(PRESENCE_TTL / 4, STATS_INTERVAL)`` with an expiry of ``PRESENCE_TTL / 2``.

Each change is one Lua script, so concurrent joins and leaves on several nodes are ordered by
Redis: ``add`` answers "first" only when the channel's set was empty, ``remove`` answers "last"
only when it becomes empty. The node whose script saw the change is the one that reports it, so
``channel_occupied`` and ``channel_vacated`` go out once for the cluster.

A node that dies holding channels (``kill -9``, a lost machine) stops refreshing its expiry;
the next heartbeat of any live node removes it from every channel it held, atomically, and
reports the channels that left empty (``vacated_elsewhere``), so those are vacated within about
``PRESENCE_TTL``. Until then the dead node still counts as a holder: a channel it held stays
occupied and a node joining it does not report it occupied again. A node whose channels Redis
forgot (a restart) records them again and reports those no other node holds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ...conf import broadcasting_settings
from ..occupancy import OccupancyListener

if TYPE_CHECKING:
    from . import RedisBackend

logger = logging.getLogger("django_broadcasting.webhooks")

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# KEYS: channel's nodes, node's channels, nodes zset. ARGV: node, channel, expiry (ms from now).
ADD = (
    _NOW
    + """
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[1]) == 1 then return 1 end
return 0
"""
)

# KEYS: channel's nodes, node's channels. ARGV: node, channel.
REMOVE = """
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('SCARD', KEYS[1]) == 0 then return 1 end
return 0
"""

# KEYS: nodes zset, node's channels. ARGV: node, expiry (ms from now). Returns the channels Redis holds for it.
HEARTBEAT = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('SCARD', KEYS[2])
"""
)

# KEYS: nodes zset. ARGV: prefix. Removes expired nodes; returns the channels that left empty.
REAP = (
    _NOW
    + """
local vacated = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local setkey = ARGV[1] .. 'bc:node:' .. node .. ':occupancy'
  for _, channel in ipairs(redis.call('SMEMBERS', setkey)) do
    local key = ARGV[1] .. 'bc:occupied:' .. channel
    if redis.call('SREM', key, node) == 1 and redis.call('SCARD', key) == 0 then
      vacated[#vacated + 1] = channel
    end
  end
  redis.call('DEL', setkey)
  redis.call('ZREM', KEYS[1], node)
end
return vacated
"""
)


class RedisOccupancy:
    """Occupancy shared by every node through Redis."""

    cluster_wide = True

    def __init__(self, driver: RedisBackend, node: str) -> None:
        self.driver = driver
        self.node = node
        self.prefix = driver.keys.occupancy_prefix  # every occupancy key starts with it
        ttl = broadcasting_settings.PRESENCE_TTL
        self.expiry_ms = max(1, int(ttl / 2 * 1000))
        self.interval = min(ttl / 4, broadcasting_settings.STATS_INTERVAL)
        self._scripts: dict[str, Any] = {}
        self._listener: OccupancyListener | None = None
        self._task: asyncio.Task | None = None

    # -- keys and calls ----------------------------------------------------------------------
    def _channel_key(self, channel: str) -> str:
        return f"{self.prefix}bc:occupied:{channel}"

    @property
    def _node_key(self) -> str:
        return f"{self.prefix}bc:node:{self.node}:occupancy"

    @property
    def _nodes_key(self) -> str:
        return f"{self.prefix}bc:occupancy-nodes"

    async def _call(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        async with self.driver.session() as client:
            script = self._scripts.get(name)
            if script is None:
                script = self._scripts[name] = client.register_script(source)
            return await script(keys=keys, args=args, client=client)

    # -- the OccupancyStore interface --------------------------------------------------------
    async def start(self, listener: OccupancyListener) -> None:
        self._listener = listener
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def add(self, channel: str) -> bool:
        keys = [self._channel_key(channel), self._node_key, self._nodes_key]
        return bool(await self._call("add", ADD, keys, [self.node, channel, self.expiry_ms]))

    async def remove(self, channel: str) -> bool:
        keys = [self._channel_key(channel), self._node_key]
        return bool(await self._call("remove", REMOVE, keys, [self.node, channel]))

    async def aclose(self) -> list[str]:
        """Expire this node now and reap it: its channels no other node holds are vacated."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            async with self.driver.session() as client:
                await client.zadd(self._nodes_key, {self.node: 0})
            return await self._reap()
        except Exception as exc:  # noqa: BLE001 - another node reaps us once the expiry passes
            logger.debug("occupancy deregistration failed: %r", exc)
            return []

    # -- heartbeat and reaping ---------------------------------------------------------------
    async def _reap(self) -> list[str]:
        found = await self._call("reap", REAP, [self._nodes_key], [self.prefix])
        return [c.decode() if isinstance(c, bytes) else c for c in found]

    async def beat(self, reap: bool = True) -> None:
        """Refresh this node, record its channels again if Redis forgot them, and reap dead nodes."""
        held = await self._call(
            "heartbeat", HEARTBEAT, [self._nodes_key, self._node_key], [self.node, self.expiry_ms]
        )
        listener = self._listener
        if listener is None:
            return
        if int(held) < listener.held_count():
            listener.forgotten()
        if not reap:
            return
        vacated = await self._reap()
        if vacated:
            logger.info("channels vacated by dead node(s): %d", len(vacated))
            await listener.vacated_elsewhere(vacated)

    async def _heartbeat(self) -> None:
        failing = False
        while True:
            try:
                # Back from an outage every node missed its beats: reap on the next beat, not now.
                await self.beat(reap=not failing)
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep beating; Redis may come back
                if not failing:
                    logger.warning("occupancy heartbeat failed: %r", exc)
                failing = True
            await asyncio.sleep(self.interval)
