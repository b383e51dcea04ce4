"""The ``redis`` backend: one PUBLISH per broadcast, history kept atomically beside it.

``BROADCAST_DRIVER=redis`` makes every process (server, WSGI worker, management command, task
worker) publish to Redis. Each message is one ``EVALSHA`` of a small Lua script that numbers
the message (``"<epoch>:<offset>"``), appends it to the channel's capped stream and PUBLISHes
it to ``{CHANNELS_PREFIX}{channel}``, all atomically; on a cache channel (``cache-*``) the same
script keeps the event as the channel's last one (``cache.py``). Server processes subscribe *once per
process* to the channels their sockets use (``transport.py``), so a broadcast costs one
PUBLISH however many sockets listen. Presence is cluster-wide (``presence.py``), history is
read back for recovery (``history.py``) and every node reports its figures (``stats.py``).

Connections: redis-py asyncio (with hiredis when installed) over a ``BlockingConnectionPool``
of ``REDIS_MAX_CONNECTIONS``, so a burst waits for a free connection instead of failing (redis-py
8 raises when a plain pool is exhausted). A pool belongs to one event loop, so the backend keeps
one client per running loop; async code that runs in a throw-away loop (``async_to_sync``)
has its Redis I/O handed to one lasting background loop per process. Sync publishers (WSGI
workers, commands, tasks) use a sync client of their own over a lasting pool: no event loop and
no thread hop per call. Both send the same commands (``_commands``).
Redis errors and timeouts become ``TransportError``. With ``REDIS_SENTINELS`` every connection finds
the primary through Redis Sentinel and follows a failover (``sentinel.py``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ...conf import broadcasting_settings
from ...encryption import seal_messages
from ...exceptions import BroadcastingImproperlyConfigured, TransportError
from ...messages import Message
from ..base import Backend, HubTransport, PresenceHost, PublishReceipt
from ..cache import cacheable
from ..history import new_epoch

if TYPE_CHECKING:
    from .cache import RedisChannelCache
    from .history import RedisHistory
    from .occupancy import RedisOccupancy
    from .presence import RedisPresence
    from .sentinel import SentinelLink
    from .transport import RedisTransport

__all__ = ["PUBLISH_SCRIPT", "RedisBackend", "RedisDriver", "RedisKeys"]

# KEYS: 1 the channel's offset hash, 2 its history stream, 3 (cache channels only) its cache key.
# ARGV: 1 the pub/sub channel, 2 the message (``Message.transport_text``), 3 history size ('0': no history),
#       4 history TTL in ms (0 = none), 5 a fresh epoch in case the history is new or gone,
#       6 (cache channels only) the cache TTL in ms.
# The published payload is "<id> <message>" (the id is empty without history), so subscribers learn
# the id without a second decode; a cache channel's key holds the same "<id> <message>".
PUBLISH_SCRIPT = """
local id = ''
if ARGV[3] ~= '0' then
  local epoch = redis.call('HGET', KEYS[1], 'e')
  if not epoch then
    epoch = ARGV[5]
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'e', epoch)
  end
  local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], offset .. '-0', 'm', ARGV[2])
  if ARGV[4] ~= '0' then
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
  end
  id = epoch .. ':' .. offset
end
if KEYS[3] then
  redis.call('SET', KEYS[3], id .. ' ' .. ARGV[2], 'PX', ARGV[6])
end
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
"""
PUBLISH_SHA = hashlib.sha1(PUBLISH_SCRIPT.encode()).hexdigest()
# Redis Cluster (cluster.py): the same script with sharded pub/sub; every name it touches shares
# the channel's hash tag, so it runs on the one shard that owns the channel.
CLUSTER_PUBLISH_SCRIPT = PUBLISH_SCRIPT.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'")


class RedisKeys:
    """Every Redis name the driver uses, under one prefix (``CHANNELS_PREFIX``).

    The pub/sub name of a channel is exactly ``{prefix}{channel}``; keys live under
    ``{prefix}bc:`` so two apps with different prefixes never see each other's data.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def pubsub(self, channel: str) -> str:
        return f"{self.prefix}{channel}"

    def offsets(self, channel: str) -> str:
        return f"{self.prefix}bc:offset:{channel}"

    def history(self, channel: str) -> str:
        return f"{self.prefix}bc:history:{channel}"

    def cache(self, channel: str) -> str:
        """The last event of a cache channel (``"<id> <message>"``), expiring after ``CACHE_CHANNEL_TTL``."""
        return f"{self.prefix}bc:cache:{channel}"

    def presence_nodes(self, channel: str) -> str:
        return f"{self.prefix}bc:presence:{channel}:nodes"

    def presence_info(self, channel: str) -> str:
        return f"{self.prefix}bc:presence:{channel}:info"

    def node_presence(self, node: str) -> str:
        return f"{self.prefix}bc:node:{node}:presence"

    @property
    def nodes(self) -> str:
        return f"{self.prefix}bc:nodes"

    def node_stats(self, node: str) -> str:
        return f"{self.prefix}bc:stats:{node}"

    # The admin (``admin.py``): the console's watch key, its event stream and the nodes
    # recording, and the requests to close a user's sockets.
    @property
    def console_watch(self) -> str:
        return f"{self.prefix}bc:console:watch"

    @property
    def console_events(self) -> str:
        return f"{self.prefix}bc:console:events"

    @property
    def console_nodes(self) -> str:
        return f"{self.prefix}bc:console:nodes"

    @property
    def occupancy_prefix(self) -> str:
        """What every occupancy key starts with (``occupancy.py`` builds them, in scripts too)."""
        return self.prefix

    # Questions every node answers (``control.py``): the request channel and the answer lists.
    @property
    def control(self) -> str:
        return f"{self.prefix}bc:control"

    def control_reply(self, request: str) -> str:
        return f"{self.prefix}bc:reply:{request}"


def _ephemeral(loop: asyncio.AbstractEventLoop) -> bool:
    """True for the one-call loops ``async_to_sync`` starts in a thread when none is running."""
    from asgiref.sync import AsyncToSync

    return loop in getattr(AsyncToSync, "loop_thread_executors", {})


class _BackgroundLoop:
    """One long-lived event loop in a daemon thread per process, for sync publishers.

    Sync code (a WSGI view, a management command, a task) reaches the driver through
    ``async_to_sync``, which runs each call in a brand-new loop. A connection pool cannot
    outlive its loop, so without this every sync publish would connect to Redis afresh: a
    connect storm under load. Their Redis I/O runs here instead, on one pool that lasts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            # A forked child (gunicorn --preload) inherits the loop but not its thread.
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="django-broadcasting-redis", daemon=True
                )
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_background = _BackgroundLoop()


class RedisBackend(Backend):
    """Publish through Redis; server processes subscribe per process, not per socket.

    OPTIONS (all optional; the ``BROADCAST_REDIS_*`` settings fill the rest): ``url``,
    ``host``, ``port``, ``password``, ``db``, ``prefix``, ``socket_timeout``,
    ``max_connections``, ``sentinels``, ``sentinel_master`` (Redis Sentinel: ``sentinel.py``),
    ``cluster_nodes`` (a Redis Cluster's seed nodes: ``cluster.py``).
    """

    name = "redis"
    cluster_wide = True

    def __init__(self, alias: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(alias, options)
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()
        self._sha: str | None = None  # the publish script's SHA, set on first use (``_script``)
        self._thread_local = threading.local()

    # -- configuration -------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return self.options.get("prefix", broadcasting_settings.CHANNELS_PREFIX)

    @cached_property
    def keys(self) -> RedisKeys:
        if self.cluster_nodes:  # Redis Cluster: hash-tagged names (cluster.py)
            from .cluster import ClusterKeys

            return ClusterKeys(self.prefix)
        return RedisKeys(self.prefix)

    # -- Redis Cluster (cluster.py) --------------------------------------------------------
    @cached_property
    def cluster_nodes(self) -> tuple[tuple[str, int], ...]:
        """Seed nodes of a Redis Cluster (``REDIS_CLUSTER_NODES``); empty for a standalone Redis."""
        nodes = self.options.get("cluster_nodes")
        if nodes is None:
            nodes = broadcasting_settings.REDIS_CLUSTER_NODES
        else:
            from ...conf import _host_port_list

            try:
                nodes = _host_port_list(nodes)
            except ValueError as exc:
                raise BroadcastingImproperlyConfigured(f"OPTIONS['cluster_nodes']: {exc}") from None
        if nodes and (self.options.get("sentinels") or broadcasting_settings.REDIS_SENTINELS):
            raise BroadcastingImproperlyConfigured(
                "REDIS_CLUSTER_NODES and REDIS_SENTINELS describe two different Redis set-ups: set one of them."
            )
        return nodes

    @property
    def publish_command(self) -> str:
        """The pub/sub command of a message without history: sharded on a cluster."""
        return "SPUBLISH" if self.cluster_nodes else "PUBLISH"

    @property
    def socket_timeout(self) -> float:
        return float(self.options.get("socket_timeout", broadcasting_settings.REDIS_SOCKET_TIMEOUT))

    @property
    def max_connections(self) -> int:
        return int(self.options.get("max_connections", broadcasting_settings.REDIS_MAX_CONNECTIONS))

    def connection_kwargs(self, sync: bool = False) -> dict[str, Any]:
        """Where and how to connect, as redis-py connection keyword arguments.

        ``sync`` picks redis-py's blocking connection classes instead of the asyncio ones.
        """
        if sync:
            from redis.connection import Connection, ConnectionPool
        else:
            from redis.asyncio.connection import Connection, ConnectionPool

        timeout = self.socket_timeout
        common: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": min(timeout, 5.0),
            "socket_keepalive": True,
        }
        url = self.options.get("url", broadcasting_settings.REDIS_URL)
        if url:
            try:
                pool = ConnectionPool.from_url(url, **common)
            except ValueError as exc:
                raise BroadcastingImproperlyConfigured(
                    f"BROADCAST_REDIS_URL is not a Redis URL: {exc}"
                ) from None
            kwargs = dict(pool.connection_kwargs)
            if "path" in kwargs:  # unix sockets have no TCP keepalive
                kwargs.pop("socket_keepalive", None)
            kwargs["connection_class"] = pool.connection_class
            return kwargs
        return {
            **common,
            "connection_class": Connection,
            "host": self.options.get("host", broadcasting_settings.REDIS_HOST),
            "port": int(self.options.get("port", broadcasting_settings.REDIS_PORT)),
            "password": self.options.get("password", broadcasting_settings.REDIS_PASSWORD),
            "db": int(self.options.get("db", broadcasting_settings.REDIS_DATABASE)),
        }

    # -- Redis Sentinel hook: set, the connections below find the primary through the sentinels
    @cached_property
    def sentinel(self) -> SentinelLink | None:
        """The Sentinel set-up (``REDIS_SENTINELS`` + ``REDIS_SENTINEL_MASTER``), or None."""
        from .sentinel import SentinelLink, sentinel_config

        config = sentinel_config(self.options)
        return SentinelLink(self, config) if config is not None else None

    @cached_property
    def _script(self) -> str:
        """The publish script (under Sentinel, one that starts a new epoch on a new primary; on a
        Redis Cluster, one that publishes with SPUBLISH)."""
        if self.cluster_nodes:  # Redis Cluster hook
            return CLUSTER_PUBLISH_SCRIPT
        return self.sentinel.publish_script if self.sentinel is not None else PUBLISH_SCRIPT

    def new_connection(self, address: tuple[str, int] | None = None) -> Any:
        """A single asyncio connection outside any pool (the server's pub/sub reader uses one).

        ``address`` (host, port) overrides where it goes: a Redis Cluster node.
        """
        if self.sentinel is not None and address is None:  # Sentinel hook
            return self.sentinel.pubsub_connection()
        kwargs = self.connection_kwargs()
        connection_class = kwargs.pop("connection_class")
        if address is not None:
            kwargs.pop("path", None)
            kwargs["host"], kwargs["port"], kwargs["db"] = address[0], address[1], 0
        return connection_class(**kwargs)

    def _make_client(self) -> Any:
        if self.cluster_nodes:  # Redis Cluster (cluster.py)
            from .cluster import make_async_client

            return make_async_client(self)
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        # One quick retry on a fresh connection covers a pooled socket that went stale
        # (a Redis restart); anything longer would turn "Redis is down" into a hang.
        retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        if self.sentinel is not None:  # Sentinel hook
            pool = self.sentinel.async_pool(self.max_connections, self.socket_timeout, retry)
            return Redis(connection_pool=pool)
        kwargs = self.connection_kwargs()
        kwargs["retry"] = retry
        pool = BlockingConnectionPool(
            max_connections=self.max_connections, timeout=self.socket_timeout, **kwargs
        )
        return Redis(connection_pool=pool)

    def client(self) -> Any:
        """The asyncio Redis client for the running event loop (pools cannot cross loops)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            with self._lock:
                # Loops that have ended cannot close their sockets any more; drop them so
                # the collector does, instead of keeping them forever.
                for old in [lp for lp in self._clients if lp.is_closed()]:
                    del self._clients[old]
                client = self._clients[loop] = self._make_client()
        return client

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Any]:
        """Yield the loop's client; close it afterwards if the loop is a throw-away one."""
        loop = asyncio.get_running_loop()
        try:
            yield self.client()
        finally:
            if _ephemeral(loop):
                with self._lock:
                    client = self._clients.pop(loop, None)
                if client is not None:
                    await _close_client(client)

    @cached_property
    def _location(self) -> str:
        if self.cluster_nodes:  # Redis Cluster hook
            return ",".join(f"{host}:{port}" for host, port in self.cluster_nodes)
        if self.sentinel is not None:  # Sentinel hook
            return self.sentinel.location()
        kwargs = self.connection_kwargs()
        if "path" in kwargs:
            return f"unix:{kwargs['path']}"
        return f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"

    def location(self) -> str:
        """``host:port/db`` (or ``unix:path``) of the Redis server."""
        return self._location

    def describe(self) -> str:
        if self.cluster_nodes:
            return f"Redis Cluster at {self._location}"
        return f"Redis at {self._location}"

    # -- publish side ----------------------------------------------------------------------
    async def apublish(self, messages: Sequence[Message]) -> PublishReceipt:
        """Publish each message with one atomic EVALSHA (history + PUBLISH), pipelined."""
        ids = await self.apublish_ids(messages) if messages else []
        return PublishReceipt(self.describe(), len(ids), tuple(ids))

    def publish(self, messages: Sequence[Message]) -> PublishReceipt:
        """Publish from sync code over the process's blocking client: no event loop, no thread hop."""
        if not messages:
            return PublishReceipt(self.describe(), 0)
        try:
            ids = self._run_sync(messages)
        except TransportError:
            raise
        except Exception as exc:  # redis.RedisError, OSError, timeouts: one clear error
            raise TransportError(f"Redis publish failed ({self.location()}): {exc}") from exc
        return PublishReceipt(self.describe(), len(ids), tuple(ids))

    async def on_lasting_loop(self, func: Any, *args: Any) -> Any:
        """Await ``func(*args)``, moved to the background loop when this loop is a throw-away."""
        if not _ephemeral(asyncio.get_running_loop()):
            return await func(*args)
        future = asyncio.run_coroutine_threadsafe(func(*args), _background.get())
        return await asyncio.wrap_future(future)

    async def apublish_ids(self, messages: Sequence[Message]) -> list[str | None]:
        """Publish ``messages``; return their history ids (None when history is off)."""
        if not messages:
            return []
        return await self.on_lasting_loop(self._apublish, messages)

    async def _apublish(self, messages: Sequence[Message]) -> list[str | None]:
        try:
            async with self.session() as client:
                return await self._run_async(client, messages)
        except TransportError:
            raise
        except Exception as exc:  # redis.RedisError, OSError, timeouts: one clear error
            raise TransportError(f"Redis publish failed ({self.location()}): {exc}") from exc

    def _commands(self, messages: Sequence[Message]) -> list[tuple[Any, ...]]:
        """One Redis command per message: the history script, or a plain PUBLISH for a message
        that keeps no history (history off, or a client event)."""
        messages = seal_messages(messages)  # a caller of the backend itself gets them sealed too
        keys = self.keys
        history = broadcasting_settings.HISTORY_ENABLED and broadcasting_settings.HISTORY_SIZE
        size = str(broadcasting_settings.HISTORY_SIZE) if history else "0"
        ttl = str(int(broadcasting_settings.HISTORY_TTL * 1000))
        epoch = new_epoch() if history else ""  # used only by a channel whose history is new or gone
        commands: list[tuple[Any, ...]] = []
        for m in messages:
            if cacheable(m):
                # A cache channel: its last event is kept beside the PUBLISH, in the same script.
                commands.append(
                    (_EVALSHA, 3, keys.offsets(m.channel), keys.history(m.channel), keys.cache(m.channel),
                     keys.pubsub(m.channel), m.transport_text, size if m.history else "0", ttl, epoch,
                     str(int(broadcasting_settings.CACHE_CHANNEL_TTL * 1000)))
                )  # fmt: skip
            elif history and m.history:
                commands.append(
                    (_EVALSHA, 2, keys.offsets(m.channel), keys.history(m.channel), keys.pubsub(m.channel),
                     m.transport_text, size, ttl, epoch)
                )  # fmt: skip
            else:
                commands.append((self.publish_command, keys.pubsub(m.channel), " " + m.transport_text))
        return commands

    def _with_sha(self, commands: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        if self._sha is None:
            self._sha = hashlib.sha1(self._script.encode()).hexdigest()
        return [("EVALSHA", self._sha, *c[1:]) if c[0] is _EVALSHA else c for c in commands]

    async def _run_async(self, client: Any, messages: Sequence[Message]) -> list[str | None]:
        commands = self._commands(messages)
        results: list[Any] = [None] * len(commands)
        todo = list(range(len(commands)))
        for attempt in range(2):
            batch = self._with_sha([commands[i] for i in todo])
            if len(batch) == 1:  # no pipeline object for the common single message
                try:
                    replies = [await client.execute_command(*batch[0])]
                except Exception as exc:  # noqa: BLE001 - sorted out by _collect
                    replies = [exc]
            else:
                async with client.pipeline(transaction=False) as pipe:
                    for command in batch:
                        pipe.execute_command(*command)
                    replies = await pipe.execute(raise_on_error=False)
            todo = _collect(todo, replies, results, attempt)
            if not todo:
                break
            self._sha = _text(await client.script_load(self._script))
        return [(r or None) if commands[i][0] is _EVALSHA else None for i, r in enumerate(results)]

    def _run_sync(self, messages: Sequence[Message]) -> list[str | None]:
        # The blocking twin of ``_run_async``: the same commands in one round trip, the same
        # reload of a script Redis forgot.
        if self.cluster_nodes:  # Redis Cluster: routed by slot (cluster.py)
            from .cluster import run_sync

            return run_sync(self, messages)
        commands = self._commands(messages)
        results: list[Any] = [None] * len(commands)
        todo = list(range(len(commands)))
        for attempt in range(2):
            replies = self._round_trip(self._with_sha([commands[i] for i in todo]))
            todo = _collect(todo, replies, results, attempt)
            if not todo:
                break
            [sha] = self._round_trip([("SCRIPT", "LOAD", self._script)])
            if isinstance(sha, Exception):
                raise sha
            self._sha = _text(sha)
        return [(r or None) if commands[i][0] is _EVALSHA else None for i, r in enumerate(results)]

    def _sync_connection(self) -> Any:
        """This thread's blocking connection to Redis (made again after a fork)."""
        local = self._thread_local
        conn = getattr(local, "conn", None)
        if conn is None or local.pid != os.getpid():
            if self.sentinel is not None:  # Sentinel hook
                conn = local.conn = self.sentinel.sync_connection()
            else:
                kwargs = self.connection_kwargs(sync=True)
                connection_class = kwargs.pop("connection_class")
                conn = local.conn = connection_class(**kwargs)
            local.pid = os.getpid()
        return conn

    def _round_trip(self, commands: list[tuple[Any, ...]], conn: Any = None) -> list[Any]:
        """Send ``commands`` at once on this thread's connection (or ``conn``) and read every reply.

        Error replies come back as exception values. A socket that Redis closed while it sat idle
        (a restart) is noticed before sending and replaced; a failure after the commands went out
        is raised, never retried, so nothing is published twice.
        """
        from redis.exceptions import ResponseError

        if conn is None:
            conn = self._sync_connection()
        if conn._sock is not None:
            try:
                stale = conn.can_read(timeout=0)  # EOF or stray bytes on an idle connection
            except Exception:  # noqa: BLE001 - a closed socket can also raise here
                stale = True
            if stale:
                conn.disconnect()
        try:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            return replies
        except BaseException:
            conn.disconnect()
            raise

    # -- subscribe side --------------------------------------------------------------------
    def create_transport(self) -> RedisTransport:
        if self.cluster_nodes:  # Redis Cluster: one sharded pub/sub link per shard
            from .cluster_transport import ClusterTransport

            return ClusterTransport(self)
        from .transport import RedisTransport

        return RedisTransport(self)

    def create_presence(self, host: PresenceHost) -> RedisPresence:
        if self.cluster_nodes:  # Redis Cluster: per-slot scripts (cluster_presence.py)
            from .cluster_presence import ClusterPresence

            return ClusterPresence(self, host)
        from .presence import RedisPresence

        return RedisPresence(self, host)

    def create_occupancy(self, node: str) -> RedisOccupancy:
        from .occupancy import RedisOccupancy

        return RedisOccupancy(self, node)

    def create_history(self, transport: HubTransport | None = None) -> RedisHistory | None:
        if not broadcasting_settings.HISTORY_ENABLED or not broadcasting_settings.HISTORY_SIZE:
            return None
        from .history import RedisHistory

        return RedisHistory(self)

    def create_cache(self, transport: HubTransport | None = None) -> RedisChannelCache:
        from .cache import RedisChannelCache

        return RedisChannelCache(self)

    def create_admin_link(self, host: Any) -> Any:
        from .admin import RedisAdminLink

        return RedisAdminLink(self, host)

    async def aconsole(self, after: str | None = None, limit: int = 500) -> dict[str, Any]:
        from .admin import aread_console

        try:
            return await self.on_lasting_loop(aread_console, self, after, limit)
        except Exception as exc:  # redis errors, timeouts
            raise TransportError(f"Could not read the console from Redis: {exc}") from exc

    async def _control(self, op: str, **args: Any) -> list[dict]:
        from .control import arequest

        try:
            return await self.on_lasting_loop(functools.partial(arequest, self, op, **args))
        except Exception as exc:  # redis errors, timeouts
            raise TransportError(
                f"Could not ask the servers through Redis ({self.location()}): {exc}"
            ) from exc

    async def aterminate_user(self, user_id: str, app_id: str | None = None) -> dict[str, Any]:
        """Ask every node to close ``user_id``'s sockets; return once they all answered (bounded)."""
        answers = await self._control("terminate", user=str(user_id), app=app_id)
        return {"closed": sum(int(a.get("closed") or 0) for a in answers), "scope": "cluster"}

    async def achannel_counts(self, prefix: str = "") -> dict[str, int]:
        """Every node's subscriptions per channel, asked at the moment of the call and added up."""
        counts: dict[str, int] = {}
        for answer in await self._control("counts", prefix=prefix):
            for name, count in (answer.get("channels") or {}).items():
                counts[name] = counts.get(name, 0) + int(count)
        return counts

    async def apresence_members(self, channel: str) -> list[dict[str, Any]]:
        """The members of ``channel`` on every live node, read from Redis (no hub needed)."""
        from .presence import aread_members

        try:
            return await self.on_lasting_loop(aread_members, self, channel)
        except Exception as exc:  # redis errors, timeouts
            raise TransportError(f"Could not read presence members from Redis: {exc}") from exc

    async def acluster_stats(self) -> dict[str, Any]:
        from .stats import aread_node_stats

        try:
            return await self.on_lasting_loop(aread_node_stats, self)
        except TransportError:
            raise
        except Exception as exc:  # redis errors, timeouts
            raise TransportError(f"Could not read node stats from Redis: {exc}") from exc

    async def aclose(self) -> None:
        """Close the client of the running loop (others close with their loops)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await _close_client(client)


_EVALSHA = object()  # marks the history script in ``_commands`` until the current SHA is filled in


def _collect(todo: list[int], replies: list[Any], results: list[Any], attempt: int) -> list[int]:
    """Store pipelined script replies; return the calls to run again after loading the script."""
    from redis.exceptions import NoScriptError

    retry = []
    for index, reply in zip(todo, replies, strict=False):
        if isinstance(reply, NoScriptError) and attempt == 0:
            retry.append(index)  # not run at all: safe to run again
        elif isinstance(reply, Exception):
            raise reply
        else:
            results[index] = _text(reply)
    return retry


async def _close_client(client: Any) -> None:
    try:
        await client.aclose(close_connection_pool=True)
    except TypeError:  # a RedisCluster client closes its node pools with itself
        await client.aclose()


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


#: The name this backend had before backends owned both sides; settings may still use it.
RedisDriver = RedisBackend
