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
- The admin's console and terminate keys keep their names (single-key commands only).

Clients: redis-py's ``RedisCluster`` (asyncio for servers and async publishers, blocking for sync
publishers) follows ``MOVED``/``ASK`` and refreshes the slot map itself. Server processes receive
through ``cluster_transport.py``: one sharded pub/sub connection per shard they need.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...exceptions import BroadcastingImproperlyConfigured
from . import RedisKeys

if TYPE_CHECKING:
    from ...messages import Message
    from . import RedisBackend

__all__ = ["ClusterKeys", "NODES_TAG", "key_slot", "make_async_client", "parse_address", "run_sync"]

#: The hash tag of the node-level keys (registry, node presence sets, node stats).
NODES_TAG = "{~nodes}"


def key_slot(name: str | bytes) -> int:
    """The cluster slot of a key or shard channel name (CRC16 of its hash tag, mod 16384)."""
    from redis.crc import key_slot as _slot

    return _slot(name.encode() if isinstance(name, str) else name)


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


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
        startup_nodes=[ClusterNode(*parse_address(a)) for a in backend.cluster_nodes],
        max_connections=backend.max_connections,
        retry=_retry(asyncio=True),
        **client_kwargs(backend),
    )


def _retry(asyncio: bool) -> Any:
    # A failover or a slot move: refresh the slot map and try again a few times, quickly (a
    # publisher sees TransportError after about a second, not a hang).
    from redis.backoff import ExponentialWithJitterBackoff

    if asyncio:
        from redis.asyncio.retry import Retry
    else:
        from redis.retry import Retry
    return Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3)


_sync_clients = threading.local()


def _sync_client(backend: RedisBackend) -> Any:
    """This thread's blocking ``RedisCluster`` (made again after a fork or a new backend)."""
    from redis.cluster import ClusterNode, RedisCluster

    key = (id(backend), os.getpid())
    client = getattr(_sync_clients, "client", None)
    if client is None or getattr(_sync_clients, "key", None) != key:
        client = RedisCluster(
            startup_nodes=[ClusterNode(*parse_address(a)) for a in backend.cluster_nodes],
            retry=_retry(asyncio=False),
            **client_kwargs(backend),
        )
        _sync_clients.client, _sync_clients.key = client, key
    return client


def round_trip(backend: RedisBackend, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` through the sync cluster client; error replies come back as values."""
    client = _sync_client(backend)
    if len(commands) == 1:
        try:
            return [client.execute_command(*commands[0])]
        except Exception as exc:  # noqa: BLE001 - sorted out by the caller (NOSCRIPT, errors)
            from redis.exceptions import ResponseError

            if isinstance(exc, ResponseError):
                return [exc]
            raise
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return pipe.execute(raise_on_error=False)


def run_sync(backend: RedisBackend, messages: Sequence[Message]) -> list[str | None]:
    """The cluster twin of ``RedisBackend._run_sync``: same commands, routed by slot."""
    from . import _EVALSHA, _collect, _text

    commands = backend._commands(messages)
    results: list[Any] = [None] * len(commands)
    todo = list(range(len(commands)))
    for attempt in range(2):
        replies = round_trip(backend, backend._with_sha([commands[i] for i in todo]))
        todo = _collect(todo, replies, results, attempt)
        if not todo:
            break
        # SCRIPT LOAD goes to every primary (a promoted replica may not have it yet).
        backend._sha = _text(_sync_client(backend).script_load(backend.publish_script))
    return [r if commands[i][0] is _EVALSHA else None for i, r in enumerate(results)]
