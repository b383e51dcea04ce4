"""Cluster-wide presence in Redis, with per-node heartbeats.

Layout under the prefix (``RedisKeys``):

- ``bc:presence:{channel}:nodes``: a sorted set (all scores 0, so it sorts by name) of
  ``"<user>\\x1f<node>"``: which nodes hold sockets of which user on the channel.
- ``bc:presence:{channel}:info``: a hash ``user -> info JSON``.
- ``bc:node:{node}:presence``: a set of ``"<channel>\\x1f<user>"`` a node holds (for reaping).
- ``bc:nodes``: a sorted set ``node -> expiry`` (Redis server time, ms), refreshed by each
  node's heartbeat every ``PRESENCE_TTL / 4`` with an expiry of ``PRESENCE_TTL / 2``.

A user is one member however many nodes and tabs hold them: ``join`` reports a new member
only when no live node held the user, ``leave`` a departure only when none does any more.
Every node also reaps: a node whose heartbeat expired (``kill -9``, a lost machine) has its
members removed atomically by whichever node gets there first, which then publishes
``member_removed``, so members of a dead node leave within ``PRESENCE_TTL``. A node that
finds itself reaped or forgotten (a Redis restart) registers its members again.

Faults: while Redis is unreachable a node answers from its own members. A join, leave or member
event that failed then (or timed out, and may have run when a frozen Redis woke up) is settled
by the next heartbeat that gets through: recorded as it stands and announced again. The first
heartbeat after an outage does not reap, since every node missed its beats; the next one does.

Each heartbeat also stores the node's ``hub.stats()`` for ``cluster.cluster_stats()``, with
the node's figures over the last 15 minutes (``series``) for the admin's charts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from ...conf import broadcasting_settings
from ...messages import Message
from ..base import PresenceHost
from ..presence import LocalPresence

if TYPE_CHECKING:
    from . import RedisBackend

logger = logging.getLogger("django_broadcasting.server")

# Redis server time in ms, so nodes on different machines agree on expiry.
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# Whether some live node (or ``self``) still holds ``user`` in a channel's nodes zset; the entry
# of node ``skip`` does not count.
_HELD = """
local function held(zkey, nodes, user, now, self, skip)
  local prefix = user .. '\\31'
  for _, e in ipairs(redis.call('ZRANGEBYLEX', zkey, '[' .. prefix, '[' .. prefix .. '\\255')) do
    local node = string.sub(e, #prefix + 1)
    if node == self then return true end
    if node ~= skip then
      local exp = redis.call('ZSCORE', nodes, node)
      if exp and tonumber(exp) > now then return true end
    end
  end
  return false
end
"""

# KEYS: channel nodes zset, channel info hash, node's set, nodes zset.
# ARGV: user, node, info JSON, "<channel>\x1f<user>", node expiry (ms from now), key TTL (ms),
#       "1" to call the user new unless *another* node holds them (a join whose first attempt
#       may or may not have run; see ``RedisPresence._heal``).
JOIN = (
    _NOW
    + _HELD
    + """
redis.call('ZADD', KEYS[4], 'GT', now + tonumber(ARGV[5]), ARGV[2])
local new
if ARGV[7] == '1' then
  new = held(KEYS[1], KEYS[4], ARGV[1], now, nil, ARGV[2]) and 0 or 1
else
  new = held(KEYS[1], KEYS[4], ARGV[1], now, ARGV[2]) and 0 or 1
end
redis.call('ZADD', KEYS[1], 0, ARGV[1] .. '\\31' .. ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
return new
"""
)

# KEYS: as JOIN. ARGV: user, node, "<channel>\x1f<user>", "1" to report the user gone even if
# an earlier attempt (that may or may not have run) already removed them.
LEAVE = (
    _NOW
    + _HELD
    + """
redis.call('ZREM', KEYS[1], ARGV[1] .. '\\31' .. ARGV[2])
redis.call('SREM', KEYS[3], ARGV[3])
if held(KEYS[1], KEYS[4], ARGV[1], now, nil) then return 0 end
local gone = redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[4] == '1' then return 1 end
return gone
"""
)

# KEYS: channel nodes zset, channel info hash, nodes zset. Returns [user, info, ...].
MEMBERS = (
    _NOW
    + """
local live, seen, out = {}, {}, {}
for _, e in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local sep = string.find(e, '\\31', 1, true)
  if sep then
    local user, node = string.sub(e, 1, sep - 1), string.sub(e, sep + 1)
    local ok = live[node]
    if ok == nil then
      local exp = redis.call('ZSCORE', KEYS[3], node)
      ok = (exp and tonumber(exp) > now) and true or false
      live[node] = ok
    end
    if ok and not seen[user] then
      seen[user] = true
      out[#out + 1] = user
      out[#out + 1] = redis.call('HGET', KEYS[2], user) or '{}'
    end
  end
end
return out
"""
)

# KEYS: nodes zset, node's set, node's stats key.
# ARGV: node, node expiry (ms from now), key TTL (ms), stats JSON, stats TTL (ms), prefix.
# Returns how many memberships Redis holds for the node (fewer than the node has: re-register).
HEARTBEAT = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
-- The registry lives as long as some node beats, like the presence keys it indexes.
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
local held = redis.call('SMEMBERS', KEYS[2])
for _, p in ipairs(held) do
  local channel = string.sub(p, 1, string.find(p, '\\31', 1, true) - 1)
  redis.call('PEXPIRE', ARGV[6] .. 'bc:presence:' .. channel .. ':nodes', ARGV[3])
  redis.call('PEXPIRE', ARGV[6] .. 'bc:presence:' .. channel .. ':info', ARGV[3])
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return #held
"""
)

# KEYS: nodes zset. ARGV: prefix. Returns [channel, user, ...] of members who left.
REAP = (
    _NOW
    + _HELD
    + """
local removed = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local setkey = ARGV[1] .. 'bc:node:' .. node .. ':presence'
  for _, p in ipairs(redis.call('SMEMBERS', setkey)) do
    local sep = string.find(p, '\\31', 1, true)
    local channel, user = string.sub(p, 1, sep - 1), string.sub(p, sep + 1)
    local zkey = ARGV[1] .. 'bc:presence:' .. channel .. ':nodes'
    redis.call('ZREM', zkey, user .. '\\31' .. node)
    if not held(zkey, KEYS[1], user, now, nil) then
      if redis.call('HDEL', ARGV[1] .. 'bc:presence:' .. channel .. ':info', user) == 1 then
        removed[#removed + 1] = channel
        removed[#removed + 1] = user
      end
    end
  end
  redis.call('DEL', setkey, ARGV[1] .. 'bc:stats:' .. node)
  redis.call('ZREM', KEYS[1], node)
end
return removed
"""
)


async def aread_members(driver: RedisBackend, channel: str) -> list[dict[str, Any]]:
    """Every member of ``channel`` on every live node, read by any process (no hub needed)."""
    if driver.cluster_nodes:  # Redis Cluster: per-slot scripts (cluster_presence.py)
        from .cluster_presence import aread_members as aread_cluster_members

        return await aread_cluster_members(driver, channel)
    k = driver.keys
    async with driver.session() as client:
        script = client.register_script(MEMBERS)
        flat = await script(
            keys=[k.presence_nodes(channel), k.presence_info(channel), k.nodes], args=[], client=client
        )
    return _members(flat)


def _members(flat: list[Any]) -> list[dict[str, Any]]:
    out = []
    for i in range(0, len(flat), 2):
        user = flat[i].decode() if isinstance(flat[i], bytes) else flat[i]
        out.append({"id": user, "info": json.loads(flat[i + 1])})
    return out


class RedisPresence:
    """Presence shared by every node through Redis (``cluster_wide``: the hub relays events)."""

    cluster_wide = True

    def __init__(self, driver: RedisBackend, hub: PresenceHost) -> None:
        self.driver = driver
        self.hub = hub
        self.keys = driver.keys
        self.node = hub.node_id
        self.local = LocalPresence()  # this node's sockets per (channel, user)
        self.ttl = broadcasting_settings.PRESENCE_TTL
        self.interval = min(self.ttl / 4, broadcasting_settings.STATS_INTERVAL)
        self._scripts: dict[str, Any] = {}
        # (channel, user) whose join, leave or member event Redis or the cluster may have missed
        # while Redis was unreachable; settled by the next heartbeat that gets through.
        self._unsettled: set[tuple[str, str]] = set()
        self._joining: set[tuple[str, str]] = set()  # joins on their way to Redis
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start the heartbeat (after construction, so it never races a first join)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._heartbeat())

    # -- Redis calls -------------------------------------------------------------------------
    async def _call(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        async with self.driver.session() as client:
            script = self._scripts.get(name)
            if script is None:
                script = self._scripts[name] = client.register_script(source)
            return await script(keys=keys, args=args, client=client)

    def _member_keys(self, channel: str) -> list[str]:
        k = self.keys
        return [k.presence_nodes(channel), k.presence_info(channel), k.node_presence(self.node), k.nodes]

    def _ms(self, seconds: float) -> int:
        return max(1, int(seconds * 1000))

    async def _join_redis(
        self, channel: str, user_id: str, info: dict[str, Any], retry: bool = False
    ) -> bool:
        args = [
            user_id,
            self.node,
            json.dumps(info, default=str),
            f"{channel}\x1f{user_id}",
            self._ms(self.ttl / 2),
            self._ms(self.ttl * 2),
            "1" if retry else "0",
        ]
        return bool(await self._call("join", JOIN, self._member_keys(channel), args))

    # -- the PresenceStore interface ---------------------------------------------------------
    async def join(self, channel: str, user_id: str, info: dict[str, Any], socket_id: str) -> bool:
        """Record a socket; True when the user became a member of the channel cluster-wide."""
        if not await self.local.join(channel, user_id, info, socket_id):
            return False
        # While this join is on its way, the heartbeat must not register the member itself
        # (it would win the race, and this join would then not report a new member).
        self._joining.add((channel, user_id))
        try:
            return await self._join_redis(channel, user_id, info)
        except Exception as exc:  # noqa: BLE001 - Redis down: the heartbeat settles it later
            logger.warning("presence join on %s not recorded in Redis: %r", channel, exc)
            self._unsettled.add((channel, user_id))
            return True
        finally:
            self._joining.discard((channel, user_id))

    async def leave(self, channel: str, user_id: str, socket_id: str) -> bool:
        """Forget a socket; True when the user left the channel cluster-wide."""
        if not await self.local.leave(channel, user_id, socket_id):
            return False
        try:
            return await self._leave_redis(channel, user_id)
        except Exception as exc:  # noqa: BLE001 - the heartbeat records it once Redis is back
            logger.warning("presence leave on %s not recorded in Redis: %r", channel, exc)
            self._unsettled.add((channel, user_id))
            return True

    def unannounced(self, channel: str, user_id: str) -> None:
        """The hub could not publish a member event (Redis unreachable): settle it on a later beat."""
        self._unsettled.add((channel, user_id))

    async def _leave_redis(self, channel: str, user_id: str, retry: bool = False) -> bool:
        args = [user_id, self.node, f"{channel}\x1f{user_id}", "1" if retry else "0"]
        return bool(await self._call("leave", LEAVE, self._member_keys(channel), args))

    async def members(self, channel: str) -> list[dict[str, Any]]:
        """Every member of ``channel`` on every live node (this node's view if Redis is down)."""
        k = self.keys
        try:
            flat = await self._call(
                "members", MEMBERS, [k.presence_nodes(channel), k.presence_info(channel), k.nodes], []
            )
        except Exception as exc:  # noqa: BLE001
            logger.warning("presence members of %s read locally: %r", channel, exc)
            return await self.local.members(channel)
        return _members(flat)

    def count(self) -> int:
        return self.local.count()

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return self.local.snapshot()

    # -- heartbeat and reaping ---------------------------------------------------------------
    async def _heartbeat(self) -> None:
        failing = False
        while True:
            try:
                # Back from an outage, other nodes missed their beats too: reap on the next beat,
                # after they have had the chance to refresh, not now.
                await self.beat(reap=not failing)
                if failing:
                    logger.warning("presence heartbeat to Redis restored")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep beating; Redis may come back
                if not failing:
                    logger.warning("presence heartbeat failed: %r", exc)
                failing = True
            await asyncio.sleep(self.interval)

    async def beat(self, reap: bool = True) -> None:
        """Refresh this node, store its stats, re-register if forgotten, settle what an outage left
        open, and reap dead nodes."""
        k = self.keys
        report = self.hub.stats()
        series = getattr(self.hub, "series_export", None)
        if series is not None:  # the admin's charts of this node: the last 15 minutes
            report["series"] = series()
        stats = json.dumps(report, default=str)
        stats_ttl = self._ms(max(3 * self.interval, self.ttl))
        held = await self._call(
            "heartbeat",
            HEARTBEAT,
            [k.nodes, k.node_presence(self.node), k.node_stats(self.node)],
            [self.node, self._ms(self.ttl / 2), self._ms(self.ttl * 2), stats, stats_ttl, k.prefix],
        )
        if int(held) < self.local.count():
            await self._register_again()
        if self._unsettled:
            await self._settle()
        if not reap:
            return
        removed = await self._call("reap", REAP, [k.nodes], [k.prefix])
        if removed:
            messages = []
            for i in range(0, len(removed), 2):
                channel, user = (v.decode() if isinstance(v, bytes) else v for v in removed[i : i + 2])
                messages.append(Message(channel, "member_removed", {"id": user}))
            logger.info("reaped %d presence member(s) of dead node(s)", len(messages))
            _report_reaped(messages)
            await self.hub.relay(messages)

    async def _settle(self) -> None:
        # A join, leave or member event that failed while Redis was unreachable may or may not
        # have reached Redis and the other nodes (a timed-out call can still run once a frozen
        # Redis wakes up). Record the state as it is now and announce it again: a repeated member
        # event is harmless, a missing one leaves a member list wrong until the next page load.
        local = {
            (channel, member["id"]): member
            for channel, members in self.local.snapshot().items()
            for member in members
        }
        for channel, user in list(self._unsettled):
            if (channel, user) in self._joining:
                continue  # a join on its way announces itself; settled on the next beat
            member = local.get((channel, user))
            if member is not None:  # still here: a member unless another node already showed them
                announce = await self._join_redis(channel, user, member["info"], retry=True)
                event, data = "member_added", member
            else:  # gone: a departure unless another node still holds them
                announce = await self._leave_redis(channel, user, retry=True)
                event, data = "member_removed", {"id": user}
            self._unsettled.discard((channel, user))
            if announce:
                await self.hub.announce(channel, event, data, None)

    async def _register_again(self) -> None:
        # Redis forgot this node (restart, or reaped during a long stall): put its members
        # back, announcing those the rest of the cluster no longer shows.
        for channel, members in self.local.snapshot().items():
            for member in members:
                if (channel, member["id"]) in self._joining or (channel, member["id"]) in self._unsettled:
                    continue  # announced by the join on its way, or by ``_settle`` next
                if await self._join_redis(channel, member["id"], member["info"]):
                    await self.hub.announce(channel, "member_added", member, None)

    async def aclose(self) -> None:
        """Stop the heartbeat and leave at once (members go without waiting for the TTL)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        k = self.keys
        try:
            async with self.driver.session() as client:
                await client.zadd(k.nodes, {self.node: 0})
            removed = await self._call("reap", REAP, [k.nodes], [k.prefix])
            if removed:
                messages = [
                    Message(removed[i].decode(), "member_removed", {"id": removed[i + 1].decode()})
                    for i in range(0, len(removed), 2)
                ]
                _report_reaped(messages)
                await self.hub.relay(messages)
        except Exception as exc:  # noqa: BLE001 - the TTL removes us anyway
            logger.debug("presence deregistration failed: %r", exc)
        self.local.clear()


def _report_reaped(messages: list[Message]) -> None:
    # Departures no socket of this node made (a dead node's members, or this node's own at
    # shutdown): the node that reaped them sends their ``member_removed`` webhook and signal.
    from ...webhooks.lifecycle import current

    lifecycle = current()
    if lifecycle is not None:
        for message in messages:
            lifecycle.member("member_removed", message.channel, str(message.data["id"]), signal=True)
