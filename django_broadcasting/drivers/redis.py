"""The ``redis`` driver: one PUBLISH per broadcast, history kept atomically beside it.

``BROADCAST_DRIVER=redis`` makes every process (server, WSGI worker, management command, task
worker) publish to Redis. Each message is one ``EVALSHA`` of a small Lua script that numbers
the message (``"<epoch>:<offset>"``), appends it to the channel's capped stream and PUBLISHes
it to ``{CHANNELS_PREFIX}{channel}``, all atomically. Server processes subscribe *once per
process* to the channels their sockets use (``server/redis_transport.py``), so a broadcast
costs one PUBLISH however many sockets listen. Presence is cluster-wide
(``server/redis_presence.py``) and every node reports its figures (``server/cluster.py``).

Connections: redis-py asyncio (with hiredis when installed) over a ``BlockingConnectionPool``
of ``REDIS_MAX_CONNECTIONS``, so a burst waits for a free connection instead of failing (redis-py
8 raises when a plain pool is exhausted). A pool belongs to one event loop, so the driver keeps
one client per running loop. Sync code reaches the driver through ``async_to_sync``, which
starts a new loop per call: that Redis I/O is handed to one lasting background loop per process,
so sync publishers (WSGI workers, commands, tasks) reuse pooled connections instead of
connecting for every message. Redis errors and timeouts become ``TransportError``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..conf import broadcasting_settings
from ..exceptions import BroadcastingImproperlyConfigured, TransportError
from ..messages import Message
from ..server.history import new_epoch
from .base import BaseDriver

if TYPE_CHECKING:
    from ..server.hub import Hub
    from ..server.redis_history import RedisHistory
    from ..server.redis_presence import RedisPresence
    from ..server.redis_transport import RedisTransport

__all__ = ["PUBLISH_SCRIPT", "RedisDriver", "RedisKeys"]

# KEYS: 1 the channel's offset hash, 2 its history stream.
# ARGV: 1 the pub/sub channel, 2 the message (transport JSON), 3 history size,
#       4 history TTL in ms (0 = none), 5 a fresh epoch in case the history is new or gone.
# The published payload is "<id> <json>", so subscribers learn the id without a second decode.
PUBLISH_SCRIPT = """
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
local id = epoch .. ':' .. offset
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
"""
PUBLISH_SHA = hashlib.sha1(PUBLISH_SCRIPT.encode()).hexdigest()


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


class RedisDriver(BaseDriver):
    """Publish through Redis; server processes subscribe per process, not per socket.

    OPTIONS (all optional; the ``BROADCAST_REDIS_*`` settings fill the rest): ``url``,
    ``host``, ``port``, ``password``, ``db``, ``prefix``, ``socket_timeout``,
    ``max_connections``.
    """

    name = "redis"

    def __init__(self, alias: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(alias, options)
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()
        self._sha = PUBLISH_SHA

    # -- configuration -------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return self.options.get("prefix", broadcasting_settings.CHANNELS_PREFIX)

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.prefix)

    @property
    def socket_timeout(self) -> float:
        return float(self.options.get("socket_timeout", broadcasting_settings.REDIS_SOCKET_TIMEOUT))

    def connection_kwargs(self) -> dict[str, Any]:
        """Where and how to connect, as redis-py connection keyword arguments."""
        from redis.asyncio.connection import ConnectionPool

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
        from redis.asyncio.connection import Connection

        return {
            **common,
            "connection_class": Connection,
            "host": self.options.get("host", broadcasting_settings.REDIS_HOST),
            "port": int(self.options.get("port", broadcasting_settings.REDIS_PORT)),
            "password": self.options.get("password", broadcasting_settings.REDIS_PASSWORD),
            "db": int(self.options.get("db", broadcasting_settings.REDIS_DATABASE)),
        }

    def new_connection(self) -> Any:
        """A single connection outside any pool (the server's pub/sub reader uses one)."""
        kwargs = self.connection_kwargs()
        connection_class = kwargs.pop("connection_class")
        return connection_class(**kwargs)

    def _make_client(self) -> Any:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.retry import Retry

        kwargs = self.connection_kwargs()
        # One quick retry on a fresh connection covers a pooled socket that went stale
        # (a Redis restart); anything longer would turn "Redis is down" into a hang.
        kwargs["retry"] = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        pool = BlockingConnectionPool(
            max_connections=int(
                self.options.get("max_connections", broadcasting_settings.REDIS_MAX_CONNECTIONS)
            ),
            timeout=self.socket_timeout,
            **kwargs,
        )
        return Redis(connection_pool=pool)

    def client(self) -> Any:
        """The Redis client for the running event loop (pools cannot cross loops)."""
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
                    await client.aclose(close_connection_pool=True)

    # -- publishing ----------------------------------------------------------------------
    async def abroadcast(self, messages: Sequence[Message]) -> None:
        """Publish each message with one atomic EVALSHA (history + PUBLISH)."""
        await self.apublish(messages)

    async def on_lasting_loop(self, func: Any, *args: Any) -> Any:
        """Await ``func(*args)``, moved to the background loop when this loop is a throw-away."""
        if not _ephemeral(asyncio.get_running_loop()):
            return await func(*args)
        future = asyncio.run_coroutine_threadsafe(func(*args), _background.get())
        return await asyncio.wrap_future(future)

    async def apublish(self, messages: Sequence[Message]) -> list[str | None]:
        """Publish ``messages``; return their history ids (None when history is off)."""
        if not messages:
            return []
        return await self.on_lasting_loop(self._apublish, messages)

    async def _apublish(self, messages: Sequence[Message]) -> list[str | None]:
        try:
            async with self.session() as client:
                return await self._publish(client, messages)
        except TransportError:
            raise
        except Exception as exc:  # redis.RedisError, OSError, timeouts: one clear error
            raise TransportError(f"Redis publish failed ({self.location()}): {exc}") from exc

    def publish(self, messages: Sequence[Message]) -> list[str | None]:
        """Sync shim over ``apublish``."""
        from asgiref.sync import async_to_sync

        return async_to_sync(self.apublish)(messages)

    async def _publish(self, client: Any, messages: Sequence[Message]) -> list[str | None]:
        from redis.exceptions import NoScriptError

        keys = self.keys
        if not (broadcasting_settings.HISTORY_ENABLED and broadcasting_settings.HISTORY_SIZE):
            async with client.pipeline(transaction=False) as pipe:
                for message in messages:
                    pipe.publish(keys.pubsub(message.channel), " " + _payload(message))
                await pipe.execute()
            return [None] * len(messages)
        size = str(broadcasting_settings.HISTORY_SIZE)
        ttl = str(int(broadcasting_settings.HISTORY_TTL * 1000))
        calls = [
            (2, keys.offsets(m.channel), keys.history(m.channel), keys.pubsub(m.channel), _payload(m), size, ttl,
             new_epoch())
            for m in messages
        ]  # fmt: skip
        if len(calls) == 1:
            try:
                return [_text(await client.evalsha(self._sha, *calls[0]))]
            except NoScriptError:  # Redis restarted or SCRIPT FLUSH: load again, once
                self._sha = await client.script_load(PUBLISH_SCRIPT)
                return [_text(await client.evalsha(self._sha, *calls[0]))]
        results: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            async with client.pipeline(transaction=False) as pipe:
                for index in todo:
                    pipe.evalsha(self._sha, *calls[index])
                replies = await pipe.execute(raise_on_error=False)
            retry = []
            for index, reply in zip(todo, replies, strict=False):
                if isinstance(reply, NoScriptError) and attempt == 0:
                    retry.append(index)  # not run at all: safe to run again
                elif isinstance(reply, Exception):
                    raise reply
                else:
                    results[index] = _text(reply)
            if not retry:
                break
            self._sha = await client.script_load(PUBLISH_SCRIPT)
            todo = retry
        return results

    def location(self) -> str:
        kwargs = self.connection_kwargs()
        if "path" in kwargs:
            return f"unix:{kwargs['path']}"
        return f"{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"

    # -- server side ---------------------------------------------------------------------
    def create_transport(self) -> RedisTransport:
        from ..server.redis_transport import RedisTransport

        return RedisTransport(self)

    def create_presence_store(self, hub: Hub) -> RedisPresence:
        from ..server.redis_presence import RedisPresence

        return RedisPresence(self, hub)

    def create_history(self) -> RedisHistory:
        from ..server.redis_history import RedisHistory

        return RedisHistory(self)

    async def acluster_stats(self) -> dict[str, Any]:
        from ..server.cluster import aread_node_stats

        return await self.on_lasting_loop(aread_node_stats, self)

    async def aclose(self) -> None:
        """Close the client of the running loop (others close with their loops)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose(close_connection_pool=True)


def _payload(message: Message) -> str:
    from json import dumps

    return dumps(message.to_transport(), separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
