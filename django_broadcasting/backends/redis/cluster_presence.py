"""Cluster-wide presence on a Redis Cluster: the standalone rules, one slot per script.

The standalone scripts (``presence.py``) read the node registry while they change a channel's
member keys. On a cluster those live in different slots (a script may only touch one), so each
step runs where its keys are (see ``cluster.py`` for the names):

- the registry slot (``{~nodes}``): the node registry, each node's set of memberships and its
  stats. One script there records or forgets a membership of this node and returns the live
  nodes; the heartbeat is one script there too.
- the channel's slot (``{<channel>}``): its members zset and info hash. The join, leave, member
  list and reap scripts get the live nodes as arguments, where the standalone ones read them.

The answers are the standalone ones: a user is one member however many nodes hold them; a join
reports a new member only when no live node held the user, a leave a departure only when none
does any more; dead nodes are reaped (whoever removes the info entry announces the departure,
so it is announced once). The heartbeat refreshes the TTL of each channel's keys in one
pipeline routed by slot.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ...messages import Message
from .presence import _NOW, RedisPresence, _members, _report_reaped

logger = logging.getLogger("django_broadcasting.server")

# Whether a live node (or ``self``) other than ``skip`` holds ``user`` in a channel's zset.
# ``live`` is a set of node names (from the registry).
_HELD = """
local function held(zkey, live, user, self, skip)
  local prefix = user .. '\\31'
  for _, e in ipairs(redis.call('ZRANGEBYLEX', zkey, '[' .. prefix, '[' .. prefix .. '\\255')) do
    local node = string.sub(e, #prefix + 1)
    if node == self then return true end
    if node ~= skip and live[node] then return true end
  end
  return false
end
local function liveset(first)
  local live = {}
  for i = first, #ARGV do live[ARGV[i]] = true end
  return live
end
"""

# Registry slot. KEYS: nodes zset, this node's set. ARGV: node, node expiry (ms from now),
# key TTL (ms), "+" or "-" (record or forget), "<channel>\x1f<user>". Returns the live nodes.
REGISTER = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'GT', now + tonumber(ARGV[2]), ARGV[1])
if ARGV[4] == '+' then redis.call('SADD', KEYS[2], ARGV[5]) else redis.call('SREM', KEYS[2], ARGV[5]) end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return redis.call('ZRANGEBYSCORE', KEYS[1], now + 1, '+inf')
"""
)

# Registry slot. KEYS: nodes zset. Returns the live nodes.
LIVE = _NOW + "return redis.call('ZRANGEBYSCORE', KEYS[1], now + 1, '+inf')\n"

# Channel slot. KEYS: channel nodes zset, channel info hash.
# ARGV: user, node, info JSON, key TTL (ms), retry flag, live nodes...
JOIN = (
    _HELD
    + """
local live = liveset(6)
local new
if ARGV[5] == '1' then
  new = held(KEYS[1], live, ARGV[1], nil, ARGV[2]) and 0 or 1
else
  new = held(KEYS[1], live, ARGV[1], ARGV[2]) and 0 or 1
end
redis.call('ZADD', KEYS[1], 0, ARGV[1] .. '\\31' .. ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return new
"""
)

# Channel slot. KEYS: as JOIN. ARGV: user, node, retry flag, live nodes...
LEAVE = (
    _HELD
    + """
redis.call('ZREM', KEYS[1], ARGV[1] .. '\\31' .. ARGV[2])
if held(KEYS[1], liveset(4), ARGV[1], nil) then return 0 end
local gone = redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[3] == '1' then return 1 end
return gone
"""
)

# Channel slot. KEYS: channel nodes zset, channel info hash. ARGV: live nodes...
# Returns [user, info, ...].
MEMBERS = """
local live, seen, out = {}, {}, {}
for i = 1, #ARGV do live[ARGV[i]] = true end
for _, e in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local sep = string.find(e, '\\31', 1, true)
  if sep then
    local user, node = string.sub(e, 1, sep - 1), string.sub(e, sep + 1)
    if live[node] and not seen[user] then
      seen[user] = true
      out[#out + 1] = user
      out[#out + 1] = redis.call('HGET', KEYS[2], user) or '{}'
    end
  end
end
return out
"""

# Registry slot. KEYS: nodes zset, node's set, node's stats key.
# ARGV: node, node expiry (ms from now), key TTL (ms), stats JSON, stats TTL (ms).
# Returns the node's memberships ("<channel>\x1f<user>"), for the channel TTLs and re-registering.
HEARTBEAT = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return redis.call('SMEMBERS', KEYS[2])
"""
)

# Registry slot. KEYS: nodes zset. ARGV: the node sets' key prefix.
# Returns [live count, live nodes..., dead node, its membership count, memberships..., ...].
DEAD = (
    _NOW
    + """
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now + 1, '+inf')
local out = {#live}
for _, node in ipairs(live) do out[#out + 1] = node end
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local held = redis.call('SMEMBERS', ARGV[1] .. node .. ':presence')
  out[#out + 1] = node
  out[#out + 1] = #held
  for _, p in ipairs(held) do out[#out + 1] = p end
end
return out
"""
)

# Channel slot. KEYS: channel nodes zset, channel info hash. ARGV: user, dead node, live nodes...
# Returns 1 when this call removed the user's last live membership (announce the departure).
REAP_ONE = (
    _HELD
    + """
redis.call('ZREM', KEYS[1], ARGV[1] .. '\\31' .. ARGV[2])
if held(KEYS[1], liveset(3), ARGV[1], nil) then return 0 end
return redis.call('HDEL', KEYS[2], ARGV[1])
"""
)

# Registry slot. KEYS: nodes zset, node's set, node's stats key. ARGV: node. Forget a reaped node
# (unless it came back meanwhile).
FORGET = (
    _NOW
    + """
local exp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if exp and tonumber(exp) > now then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""
)


async def aread_members(driver: Any, channel: str) -> list[dict[str, Any]]:
    """Every member of ``channel`` on every live node, read by any process (no hub needed)."""
    k = driver.keys
    async with driver.session() as client:
        live = await client.register_script(LIVE)(keys=[k.nodes], args=[], client=client)
        flat = await client.register_script(MEMBERS)(
            keys=[k.presence_nodes(channel), k.presence_info(channel)], args=live, client=client
        )
    return _members(flat)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ClusterPresence(RedisPresence):
    """``RedisPresence`` on a Redis Cluster: each script runs in one slot (see the module doc)."""

    async def _live(self, op: str | None = None, membership: str = "") -> list[str]:
        k = self.keys
        if op is None:
            raw = await self._call("live", LIVE, [k.nodes], [])
        else:
            raw = await self._call(
                "register",
                REGISTER,
                [k.nodes, k.node_presence(self.node)],
                [self.node, self._ms(self.ttl / 2), self._ms(self.ttl * 2), op, membership],
            )
        return [_s(n) for n in raw]

    def _channel_keys(self, channel: str) -> list[str]:
        return [self.keys.presence_nodes(channel), self.keys.presence_info(channel)]

    async def _join_redis(
        self, channel: str, user_id: str, info: dict[str, Any], retry: bool = False
    ) -> bool:
        # The membership goes into this node's set first: should the node die right after, the
        # reaper finds it.
        live = await self._live("+", f"{channel}\x1f{user_id}")
        args = [user_id, self.node, json.dumps(info, default=str), self._ms(self.ttl * 2),
                "1" if retry else "0", *live]  # fmt: skip
        return bool(await self._call("cjoin", JOIN, self._channel_keys(channel), args))

    async def _leave_redis(self, channel: str, user_id: str, retry: bool = False) -> bool:
        live = await self._live("-", f"{channel}\x1f{user_id}")
        args = [user_id, self.node, "1" if retry else "0", *live]
        return bool(await self._call("cleave", LEAVE, self._channel_keys(channel), args))

    async def members(self, channel: str) -> list[dict[str, Any]]:
        try:
            live = await self._live()
            flat = await self._call("cmembers", MEMBERS, self._channel_keys(channel), live)
        except Exception as exc:  # noqa: BLE001
            logger.warning("presence members of %s read locally: %r", channel, exc)
            return await self.local.members(channel)
        return _members(flat)

    async def beat(self, reap: bool = True) -> None:
        k = self.keys
        report = self.hub.stats()
        series = getattr(self.hub, "series_export", None)
        if series is not None:
            report["series"] = series()
        stats_ttl = self._ms(max(3 * self.interval, self.ttl))
        key_ttl = self._ms(self.ttl * 2)
        held = await self._call(
            "cheartbeat",
            HEARTBEAT,
            [k.nodes, k.node_presence(self.node), k.node_stats(self.node)],
            [self.node, self._ms(self.ttl / 2), key_ttl, json.dumps(report, default=str), stats_ttl],
        )
        channels = {_s(p).split("\x1f", 1)[0] for p in held}
        if channels:  # the channels' keys live as long as a node holds members there
            async with self.driver.session() as client:
                pipe = client.pipeline(transaction=False)
                for channel in channels:
                    for key in self._channel_keys(channel):
                        pipe.pexpire(key, key_ttl)
                await pipe.execute(raise_on_error=False)
        if len(held) < self.local.count():
            await self._register_again()
        if self._unsettled:
            await self._settle()
        if reap:
            await self._reap()

    async def _reap(self) -> None:
        k = self.keys
        prefix = k.node_presence("")[: -len(":presence")]  # "<prefix>bc:{~nodes}:node:"
        flat = [_s(v) for v in await self._call("dead", DEAD, [k.nodes], [prefix])]
        count = int(flat[0])
        live, rest = flat[1 : 1 + count], flat[1 + count :]
        messages = []
        while rest:
            node, held = rest[0], int(rest[1])
            memberships, rest = rest[2 : 2 + held], rest[2 + held :]
            for membership in memberships:
                channel, user = membership.split("\x1f", 1)
                removed = await self._call(
                    "creap", REAP_ONE, self._channel_keys(channel), [user, node, *live]
                )
                if removed:
                    messages.append(Message(channel, "member_removed", {"id": user}))
            await self._call("forget", FORGET, [k.nodes, k.node_presence(node), k.node_stats(node)], [node])
        if messages:
            logger.info("reaped %d presence member(s) of dead node(s)", len(messages))
            _report_reaped(messages)
            await self.hub.relay(messages)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            async with self.driver.session() as client:
                await client.zadd(self.keys.nodes, {self.node: 0})
            await self._reap()
        except Exception as exc:  # noqa: BLE001 - the TTL removes us anyway
            logger.debug("presence deregistration failed: %r", exc)
        self.local.clear()
