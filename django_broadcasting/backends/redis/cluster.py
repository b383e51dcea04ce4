"""The ``redis`` backend on a Redis Cluster (Redis 7+): key placement, clients, topology.

``BROADCAST_REDIS_CLUSTER_NODES`` (seed nodes, ``host:port`` list) switches the ``redis`` backend
to the cluster topology. Same backend, same publish script, same history and presence rules; what
changes is where each name lives:

- A channel's names all carry the channel as their hash tag, so they live in one slot, on one
  shard: the offset hash ``{prefix}bc:{<channel>}:offset``, the history stream
  ``{prefix}bc:{<channel>}:history``, the presence keys ``{prefix}bc:{<channel>}:presence:nodes``
  and ``...:presence:info``, and the sharded pub/sub channel ``{prefix}{<channel>}``. The publish
  script (history ``XADD`` + ``SPUBLISH``) therefore runs on one shard, atomically, and a
  broadcast touches only the shard that owns the channel's slot.
- What is not per channel (the node registry, each node's presence set, each node's stats)
  carries the fixed tag ``{~nodes}`` (``~`` cannot occur in a channel name): one slot, so the
  heartbeat stays one script and the stats API one ``MGET``.
- The webhook occupancy keys (``occupancy.py``) carry the fixed tag ``{~occupancy}`` (its
  scripts touch a channel's holders and the node registry together); the control channel
  (``control.py``) is the shard channel ``{prefix}bc:{~control}``, published with ``SPUBLISH`` so
  its answer counts every listening process; the admin's console keys keep their names
  (single-key commands only).

Clients: redis-py's ``RedisCluster`` (asyncio for servers and async publishers, blocking for sync
publishers) follows ``MOVED``/``ASK`` and refreshes the slot map itself. Server processes receive
through ``cluster_transport.py``: one sharded pub/sub connection per shard they need.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...exceptions import BroadcastingImproperlyConfigured
from . import RedisKeys

if TYPE_CHECKING:
    from ...messages import Message
    from . import RedisBackend

__all__ = [
    "ClusterKeys",
    "NODES_TAG",
    "SyncRouter",
    "key_slot",
    "make_async_client",
    "parse_slots",
    "run_sync",
]

SLOTS = 16384
#: The hash tag of the node-level keys (registry, node presence sets, node stats).
NODES_TAG = "{~nodes}"
#: The hash tags of the webhook occupancy keys and of the control channel (``control.py``).
OCCUPANCY_TAG = "{~occupancy}"
CONTROL_TAG = "{~control}"


def key_slot(name: str | bytes) -> int:
    """The cluster slot of a key or shard channel name (CRC16 of its hash tag, mod 16384)."""
    from redis.crc import key_slot as _slot

    return _slot(name.encode() if isinstance(name, str) else name)


class ClusterKeys(RedisKeys):
    """``RedisKeys`` with hash tags: a channel's keys and shard channel share the channel's slot."""

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise BroadcastingImproperlyConfigured(
                f"BROADCAST_CHANNELS_PREFIX must not contain '{{' or '}}' with Redis Cluster "
                f"(the backend places keys with hash tags); got {prefix!r}."
            )
        super().__init__(prefix)

    def pubsub(self, channel: str) -> str:
        return f"{self.prefix}{{{channel}}}"

    def offsets(self, channel: str) -> str:
        return f"{self.prefix}bc:{{{channel}}}:offset"

    def history(self, channel: str) -> str:
        return f"{self.prefix}bc:{{{channel}}}:history"

    def cache(self, channel: str) -> str:
        return f"{self.prefix}bc:{{{channel}}}:cache"

    def presence_nodes(self, channel: str) -> str:
        return f"{self.prefix}bc:{{{channel}}}:presence:nodes"

    def presence_info(self, channel: str) -> str:
        return f"{self.prefix}bc:{{{channel}}}:presence:info"

    def node_presence(self, node: str) -> str:
        return f"{self.prefix}bc:{NODES_TAG}:node:{node}:presence"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}bc:{NODES_TAG}"

    def node_stats(self, node: str) -> str:
        return f"{self.prefix}bc:{NODES_TAG}:stats:{node}"

    @property
    def occupancy_prefix(self) -> str:
        # Occupancy scripts touch a channel's holders, the node's channels and the node registry
        # together: all of it in one fixed slot.
        return f"{self.prefix}{OCCUPANCY_TAG}:"

    @property
    def control(self) -> str:
        return f"{self.prefix}bc:{CONTROL_TAG}"

    def control_reply(self, request: str) -> str:
        return f"{self.prefix}bc:{CONTROL_TAG}:reply:{request}"


def client_kwargs(backend: RedisBackend) -> dict[str, Any]:
    """Connection options shared by every cluster client (password and timeouts)."""
    timeout = backend.socket_timeout
    kwargs: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 5.0),
        "socket_keepalive": True,
    }
    password = backend.options.get("password")
    if password is None:
        from ...conf import broadcasting_settings

        password = broadcasting_settings.REDIS_PASSWORD
    if password:
        kwargs["password"] = password
    return kwargs


def make_async_client(backend: RedisBackend) -> Any:
    """An asyncio ``RedisCluster`` over the seed nodes (it discovers the rest)."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in backend.cluster_nodes],
        max_connections=backend.max_connections,
        retry=_retry(),
        **client_kwargs(backend),
    )


def _retry() -> Any:
    # A failover or a slot move: refresh the slot map and try again a few times, quickly (a
    # publisher sees TransportError after about a second, not a hang).
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3)


def parse_slots(reply: Any, asked: tuple[str, int]) -> list[tuple[str, int] | None]:
    """A ``CLUSTER SLOTS`` reply as a list: slot -> (host, port) of its primary (None: unserved)."""
    owners: list[tuple[str, int] | None] = [None] * SLOTS
    for entry in reply:
        start, end, primary = int(entry[0]), int(entry[1]), entry[2]
        host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
        owner = (host or asked[0], int(primary[1]))
        owners[start : end + 1] = [owner] * (end - start + 1)
    return owners


def command_slot(command: tuple[Any, ...]) -> int:
    """The slot of a publish command: ``EVALSHA sha numkeys key ...`` or ``SPUBLISH channel msg``."""
    return key_slot(command[3] if command[0] == "EVALSHA" else command[1])


class SyncRouter:
    """A sync publisher's way into the cluster: the slot map and one blocking connection per primary.

    Commands are grouped by the primary that owns their slot and sent to each in one round trip,
    as the standalone publisher does on its single connection: no per-call slot-map lookups of a
    general-purpose cluster client. ``MOVED`` refreshes the map, ``ASK`` is followed with
    ``ASKING``, ``TRYAGAIN``/``CLUSTERDOWN`` and a node that refuses connections (a failover in
    progress) are retried for about a second; these commands never ran, so retrying cannot publish
    twice. A connection that fails after the commands went out raises: the outcome is unknown.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self.owners: list[tuple[str, int] | None] = []
        self.conns: dict[tuple[str, int], Any] = {}

    def connection(self, address: tuple[str, int]) -> Any:
        conn = self.conns.get(address)
        if conn is None:
            kwargs = self.backend.connection_kwargs(sync=True)
            connection_class = kwargs.pop("connection_class")
            kwargs.pop("path", None)
            kwargs["host"], kwargs["port"], kwargs["db"] = address[0], address[1], 0
            conn = self.conns[address] = connection_class(**kwargs)
        return conn

    def refresh(self) -> None:
        seeds = list(self.backend.cluster_nodes)
        error: Exception | None = None
        for address in dict.fromkeys([*self.conns, *seeds]):
            conn = self.connection(address)
            try:
                conn.send_command("CLUSTER", "SLOTS", check_health=False)
                self.owners = parse_slots(conn.read_response(), address)
                return
            except Exception as exc:  # noqa: BLE001 - try the next node
                conn.disconnect()
                error = exc
        raise ConnectionError(f"no Redis Cluster node answered CLUSTER SLOTS: {error}")

    def run(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` to their primaries; one reply per command (error replies as values)."""
        from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError

        if not self.owners:
            self.refresh()
        replies: list[Any] = [None] * len(commands)
        todo = list(range(len(commands)))
        asking: dict[int, tuple[str, int]] = {}
        error: Exception | str = "redirected too often"
        for attempt in range(6):
            groups: dict[tuple[str, int], list[int]] = {}
            for i in todo:
                owner = asking.get(i) or self.owners[command_slot(commands[i])]
                if owner is None:  # no primary serves the slot yet (a failover)
                    groups.setdefault(("", 0), []).append(i)
                else:
                    groups.setdefault(owner, []).append(i)
            retry: list[int] = []
            stale = ("", 0) in groups
            retry += groups.pop(("", 0), [])
            for address, indexes in groups.items():
                conn = self.connection(address)
                try:
                    if conn._sock is None:
                        conn.connect()  # refused: nothing was sent, safe to retry elsewhere
                except Exception as exc:  # noqa: BLE001
                    conn.disconnect()
                    retry += indexes
                    stale = True
                    error = exc
                    continue
                batch: list[tuple[Any, ...]] = []
                for i in indexes:
                    if i in asking:
                        batch.append(("ASKING",))
                    batch.append(commands[i])
                out = self.backend._round_trip(batch, conn)
                out = [r for r, c in zip(out, batch, strict=True) if c[0] != "ASKING"]
                for i, reply in zip(indexes, out, strict=True):
                    asking.pop(i, None)
                    if isinstance(reply, MovedError):  # (a subclass of AskError: test it first)
                        self.owners[reply.slot_id] = reply.node_addr
                        stale = True
                        retry.append(i)
                    elif isinstance(reply, AskError):
                        asking[i] = reply.node_addr
                        retry.append(i)
                    elif isinstance(reply, (TryAgainError, ClusterDownError)):
                        retry.append(i)
                    else:
                        replies[i] = reply
            if not retry:
                return replies
            todo = sorted(retry)
            if attempt < 5:
                time.sleep(0.02 * 2**attempt if attempt else 0)
                if stale:
                    try:
                        self.refresh()
                    except ConnectionError as exc:
                        error = exc
        raise ConnectionError(f"the cluster did not take the commands (failover or resharding): {error}")

    def load_script(self, script: str) -> str:
        """SCRIPT LOAD on every primary (a promoted replica may not have it yet)."""
        sha = ""
        for address in {a for a in self.owners if a is not None}:
            [reply] = self.backend._round_trip([("SCRIPT", "LOAD", script)], self.connection(address))
            if isinstance(reply, Exception):
                raise reply
            sha = reply.decode() if isinstance(reply, bytes) else reply
        return sha


_routers = threading.local()


def _router(backend: RedisBackend) -> SyncRouter:
    """This thread's ``SyncRouter`` (made again after a fork or for another backend)."""
    key = (id(backend), os.getpid())
    router = getattr(_routers, "router", None)
    if router is None or getattr(_routers, "key", None) != key:
        router = _routers.router = SyncRouter(backend)
        _routers.key = key
    return router


def run_sync(backend: RedisBackend, messages: Sequence[Message]) -> list[str | None]:
    """The cluster twin of ``RedisBackend._run_sync``: the same commands, sent to their shards."""
    from . import _EVALSHA, _collect

    router = _router(backend)
    commands = backend._commands(messages)
    results: list[Any] = [None] * len(commands)
    todo = list(range(len(commands)))
    for attempt in range(2):
        replies = router.run(backend._with_sha([commands[i] for i in todo]))
        todo = _collect(todo, replies, results, attempt)
        if not todo:
            break
        backend._sha = router.load_script(backend._script)
    return [r if commands[i][0] is _EVALSHA else None for i, r in enumerate(results)]
