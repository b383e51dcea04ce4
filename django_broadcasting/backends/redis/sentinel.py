"""Redis Sentinel for the ``redis`` backend: find the primary through the sentinels, follow a failover.

Configured by ``REDIS_SENTINELS`` (``BROADCAST_REDIS_SENTINELS``, ``host:port`` list) and
``REDIS_SENTINEL_MASTER`` (``BROADCAST_REDIS_SENTINEL_MASTER``, the name the sentinels monitor),
both or neither. ``REDIS_URL`` still says how to talk to the primary (password, database,
``rediss://`` for TLS); its host and port are ignored, since the sentinels name the primary.

Every connection the backend opens goes through redis-py's Sentinel support: the publishers'
blocking connection (one per thread), the asyncio pool behind publishing, presence heartbeats,
history reads and node stats, and each server's pub/sub link (``transport.py``). Each is a
``SentinelManagedConnection``: whenever it (re)connects it asks the sentinels which instance is
the primary (an instance they see down is never taken). So a failover needs nothing from
anyone: the pub/sub link drops with the old primary, reconnects to the new one, subscribes
again and catches up from the history; publishers get ``TransportError`` at once while there
is no primary (the connect is refused, or the sentinels have none to name), and publish to the
new primary at their next call. Nothing retries in a loop, so nothing hangs.

Message ids across a failover. Replication is asynchronous: the last messages the old primary
acknowledged may never have reached the replica that takes over, yet servers delivered them,
with ids ``<epoch>:<offset>`` that the new primary would hand out again. So the publish script
used here records, next to each channel's epoch, the replication id of the primary that numbers
the channel (``master_replid``, which a promotion always changes), and starts a new epoch at the
first publish on a primary it has not seen. Clients that recover across a failover get
``recovery_failed`` and reload their state (as after a Redis restart); servers read the new
epoch from its start, so nothing published on the new primary is missed. Reading the
replication id costs one ``INFO replication`` inside the script (about 6 us of Redis time per
publish, measured): only Sentinel set-ups pay it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.connection import SSLConnection as AsyncSSLConnection
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncManagedConnection
from redis.connection import SSLConnection
from redis.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
)

from ...conf import _host_port_list, broadcasting_settings
from ...exceptions import BroadcastingImproperlyConfigured
from . import PUBLISH_SCRIPT

if TYPE_CHECKING:
    from . import RedisBackend

__all__ = ["SENTINEL_PUBLISH_SCRIPT", "SentinelConfig", "SentinelLink", "sentinel_config"]

# The redis backend's publish script (``PUBLISH_SCRIPT`` in ``__init__.py``) plus the primary's
# replication id in the channel's offset hash (field ``r``): a channel last numbered by another
# primary starts a new epoch, its old stream dropped, because the tail of that stream may differ
# from what subscribers were sent. KEYS and ARGV as in ``PUBLISH_SCRIPT``.
_STANDARD_EPOCH = """  local epoch = redis.call('HGET', KEYS[1], 'e')
  if not epoch then
    epoch = ARGV[5]
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'e', epoch)
  end
"""
_PRIMARY_EPOCH = """  local primary = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)') or ''
  local state = redis.call('HMGET', KEYS[1], 'e', 'r')
  local epoch = state[1]
  if not epoch or state[2] ~= primary then
    epoch = ARGV[5]
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('HSET', KEYS[1], 'e', epoch, 'r', primary)
  end
"""
if _STANDARD_EPOCH not in PUBLISH_SCRIPT:  # pragma: no cover - a change to the script must come here too
    raise ImportError("the redis publish script's epoch block changed: update sentinel.py")
SENTINEL_PUBLISH_SCRIPT = PUBLISH_SCRIPT.replace(_STANDARD_EPOCH, _PRIMARY_EPOCH)
SENTINEL_PUBLISH_SHA = hashlib.sha1(SENTINEL_PUBLISH_SCRIPT.encode()).hexdigest()


@dataclass(frozen=True)
class SentinelConfig:
    """Where the sentinels are and the name of the primary they watch."""

    sentinels: tuple[tuple[str, int], ...]
    master: str

    def location(self) -> str:
        nodes = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels)
        return f"sentinel {self.master!r} via {nodes}"


def sentinel_config(options: dict[str, Any]) -> SentinelConfig | None:
    """The backend's Sentinel set-up (its OPTIONS first, then the settings), or None for standalone.

    Raise ``BroadcastingImproperlyConfigured`` naming the key when only half of it is given.
    """
    if "sentinels" in options:
        try:
            sentinels = _host_port_list(options["sentinels"])
        except ValueError as exc:
            raise BroadcastingImproperlyConfigured(f"redis OPTIONS['sentinels']: {exc}.") from None
    else:
        sentinels = broadcasting_settings.REDIS_SENTINELS
    master = options.get("sentinel_master", broadcasting_settings.REDIS_SENTINEL_MASTER) or None
    if not sentinels and not master:
        return None
    if not master:
        raise BroadcastingImproperlyConfigured(
            "REDIS_SENTINELS (BROADCAST_REDIS_SENTINELS) is set but REDIS_SENTINEL_MASTER "
            "(BROADCAST_REDIS_SENTINEL_MASTER) is not: name the primary the sentinels monitor."
        )
    if not sentinels:
        raise BroadcastingImproperlyConfigured(
            "REDIS_SENTINEL_MASTER (BROADCAST_REDIS_SENTINEL_MASTER) is set but REDIS_SENTINELS "
            "(BROADCAST_REDIS_SENTINELS) is empty: list the sentinels as host:port."
        )
    if not isinstance(master, str):
        raise BroadcastingImproperlyConfigured("REDIS_SENTINEL_MASTER must be a string.")
    return SentinelConfig(sentinels, master)


# redis-py 6+ connects through ``connect_check_health()``; older versions only through ``connect()``,
# which ``SentinelManagedConnection`` already sends to the sentinels.
_CHECKED_CONNECT = hasattr(SentinelManagedConnection, "connect_check_health")


class _PrimaryConnection(SentinelManagedConnection):
    """A blocking connection that asks the sentinels for the primary on every connect.

    redis-py's ``SentinelManagedConnection`` does so only in ``connect()``; a command sent on a
    disconnected one goes through ``connect_check_health()`` and would reach the address it last
    had (or redis-py's default, localhost:6379). Here every way in asks the sentinels.
    """

    def _connect_retry(self) -> None:
        if not _CHECKED_CONNECT:
            return super()._connect_retry()
        self.connect_check_health(
            check_health=self.connection_pool.check_connection, retry_socket_connect=False
        )

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock:
            return
        self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class _PrimarySSLConnection(_PrimaryConnection, SSLConnection):
    pass


class _AsyncPrimaryConnection(AsyncManagedConnection):
    """The asyncio twin of ``_PrimaryConnection``."""

    async def _connect_retry(self) -> None:
        if not _CHECKED_CONNECT:
            return await super()._connect_retry()
        await self.connect_check_health(
            check_health=self.connection_pool.check_connection, retry_socket_connect=False
        )

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if self.is_connected:
            return
        self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(
            check_health=check_health, retry_socket_connect=retry_socket_connect
        )


class _AsyncPrimarySSLConnection(_AsyncPrimaryConnection, AsyncSSLConnection):
    pass


class _BlockingSentinelPool(AsyncSentinelConnectionPool, BlockingConnectionPool):
    """Sentinel discovery with ``BlockingConnectionPool``'s waiting for a free connection.

    redis-py's own Sentinel pool raises when every connection is busy; the backend waits,
    as it does for a standalone Redis (``REDIS_MAX_CONNECTIONS``).
    """

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # the client is closing: its connections to the sentinels go too
            await self.sentinel_manager.aclose()


class SentinelLink:
    """Make the backend's connections Sentinel-managed (one per backend)."""

    def __init__(self, backend: RedisBackend, config: SentinelConfig) -> None:
        self.backend = backend
        self.config = config
        self._lock = threading.Lock()
        self._sync_pool: SentinelConnectionPool | None = None
        self._sync_pid = 0

    publish_script = SENTINEL_PUBLISH_SCRIPT

    def location(self) -> str:
        return f"{self.config.location()}, db {self.backend.connection_kwargs().get('db', 0)}"

    def _primary_kwargs(self, sync: bool) -> dict[str, Any]:
        """The backend's connection settings for the primary, minus the address (sentinels give it)."""
        kwargs = self.backend.connection_kwargs(sync=sync)
        if "path" in kwargs:
            raise BroadcastingImproperlyConfigured(
                "REDIS_URL is a unix:// socket, but with REDIS_SENTINELS the primary is reached over "
                "TCP at the address the sentinels give: use redis:// or rediss://."
            )
        connection_class = kwargs.pop("connection_class")
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        tls = "SSL" in connection_class.__name__
        if sync:
            kwargs["connection_class"] = _PrimarySSLConnection if tls else _PrimaryConnection
        else:
            kwargs["connection_class"] = _AsyncPrimarySSLConnection if tls else _AsyncPrimaryConnection
        return kwargs

    @staticmethod
    def _sentinel_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
        # The sentinels speak plain TCP without AUTH here; only the socket timeouts carry over.
        return {k: v for k, v in kwargs.items() if k.startswith("socket_")}

    # -- asyncio: the pooled client (publishing, presence, history, stats) ----------------------
    def async_pool(self, max_connections: int, timeout: float, retry: Any) -> _BlockingSentinelPool:
        kwargs = self._primary_kwargs(sync=False)
        manager = AsyncSentinel(self.config.sentinels, sentinel_kwargs=self._sentinel_kwargs(kwargs))
        return _BlockingSentinelPool(
            self.config.master,
            manager,
            max_connections=max_connections,
            timeout=timeout,
            retry=retry,
            **kwargs,
        )

    def pubsub_connection(self) -> Any:
        """A connection outside the pool for the server's pub/sub link, found through the loop's pool."""
        pool = self.backend.client().connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs.pop("retry", None)  # the transport has its own reconnect loop
        return pool.connection_class(**kwargs)

    # -- blocking: the sync publishers' per-thread connection -------------------------------------
    def sync_connection(self) -> Any:
        with self._lock:
            if self._sync_pool is None or self._sync_pid != os.getpid():
                kwargs = self._primary_kwargs(sync=True)
                manager = Sentinel(self.config.sentinels, sentinel_kwargs=self._sentinel_kwargs(kwargs))
                self._sync_pool = SentinelConnectionPool(self.config.master, manager, **kwargs)
                self._sync_pid = os.getpid()
            pool = self._sync_pool
        # Used on its own (not checked out of the pool): the pool only finds the primary for it.
        return pool.connection_class(**pool.connection_kwargs)
