"""Channels consumers: they translate WebSocket events and frames, nothing more.

Authorization lives in ``authorization``, fan-out and presence in the ``Hub``. Deliveries
do not pass through these consumers at all: the hub writes frames to the ASGI ``send``
directly, so the per-message ``dispatch`` of Channels (and its thread hop since 4.2) is
only paid for frames the *client* sends, and even there this consumer skips the
``close_old_connections`` round trip (handlers that touch the ORM use
``database_sync_to_async``, which closes stale connections itself).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from asgiref.sync import markcoroutinefunction
from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer

from ... import signals
from ...auth.identity import ANONYMOUS
from ...authorization import ChannelKind, aauthorize
from ...conf import broadcasting_settings
from ...core import codes
from ...exceptions import (
    OverCapacity,
)
from ...pusher_apps import default_app
from ..addresses import client_address, limited
from ..connection import Connection
from ..hub import get_hub, mark_serving
from .native.codec import NATIVE, ProtocolError, error_frame

logger = logging.getLogger("django_broadcasting.server")


class HubConsumer(AsyncConsumer):
    """Connection lifecycle shared by every protocol: limits, hub registration, subscriptions."""

    protocol: Any = NATIVE
    #: The ``Connection`` class of this protocol's sockets (a protocol may map close codes).
    connection_class: type[Connection] = Connection
    #: The channel the frame being handled subscribed to, until its ``subscribed`` signal is sent.
    _joined: str | None = None
    #: The Pusher app of this socket (``PusherConsumer`` sets it from the URL's key); None: the default app.
    app: Any = None

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> Any:
        """Return the ASGI app that runs one consumer per socket (as Channels' ``as_asgi``).

        It hands over the consumer's own coroutine instead of awaiting it: one coroutine frame
        less for the whole life of every socket.
        """

        @markcoroutinefunction
        def app(scope: dict, receive: Any, send: Any) -> Any:
            return cls(**initkwargs)(scope, receive, send)

        app.consumer_class = cls  # type: ignore[attr-defined]
        app.consumer_initkwargs = initkwargs  # type: ignore[attr-defined]
        functools.update_wrapper(app, cls, updated=())
        return app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # No per-socket channel-layer channel: the hub receives broadcasts for the whole
        # process, so a socket costs no layer channel, no reader task and no group entry.
        self.scope = scope
        self.base_send = send
        self.conn: Connection | None = None
        self.hub = hub = get_hub()
        if not hub.serving:  # the first consumer marks the process as serving
            mark_serving()
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            # The server is shutting down (daphne cancels every application): tell the
            # client to come back, rather than leaving it with an abnormal 1006.
            if self.conn is not None:
                await self.conn.close(codes.WS_1012_SERVICE_RESTART)
            raise
        finally:
            await self._cleanup()

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def identity(self) -> Any:
        return self.scope.get("broadcasting_identity", ANONYMOUS)

    async def refuse(self) -> None:
        """Refuse the handshake: servers answer HTTP 403."""
        await self.base_send({"type": "websocket.close", "code": codes.WS_1008_POLICY_VIOLATION})
        raise StopConsumer

    async def open(self) -> Connection:
        """Accept the socket and register it with the hub."""
        if not broadcasting_settings.WEBSOCKET_ENABLED:
            # BROADCAST_WEBSOCKET_ENABLED=false: this process publishes and serves HTTP only.
            await self.refuse()
        await self.hub.start()
        accept: dict[str, Any] = {"type": "websocket.accept"}
        subprotocol = self.scope.get("broadcasting_subprotocol")
        if subprotocol:
            accept["subprotocol"] = subprotocol
        await self.base_send(accept)
        app = self.app if self.app is not None else default_app()
        conn = self.connection_class(
            self.base_send,
            self.hub.new_socket_id(app),
            self.protocol,
            self.identity,
            buffer_limit=broadcasting_settings.OUTGOING_BUFFER,
            on_close=self.close_connection,
        )
        self.conn = conn
        conn.app = app
        conn.address = client_address(self.scope)
        limit = broadcasting_settings.MAX_CONNECTIONS
        per_address = broadcasting_settings.MAX_CONNECTIONS_PER_ADDRESS
        if (limit and len(self.hub.connections) >= limit) or (
            per_address and self.hub.addresses.get(conn.address, 0) >= per_address and limited(conn.address)
        ):
            self.over_capacity(conn)
            await conn.close(codes.CLOSE_4100_OVER_CAPACITY)
            raise StopConsumer
        self.hub.add_connection(conn)
        if signals.connection_opened.receivers:
            await signals.asend_fast(
                signals.connection_opened, sender=type(self), socket_id=conn.socket_id, identity=conn.identity
            )
        return conn

    def over_capacity(self, conn: Connection) -> None:
        self.hub.count_error(codes.CLOSE_4100_OVER_CAPACITY)
        conn.push(error_frame(codes.CLOSE_4100_OVER_CAPACITY, "Over capacity; try again later."))

    async def close_connection(self, code: int) -> None:
        if self.conn is not None:
            await self.conn.close(code)

    async def websocket_disconnect(self, message: dict) -> None:
        raise StopConsumer

    async def _cleanup(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None or conn.socket_id not in self.hub.connections:
            return
        await self.hub.remove_connection(conn)
        if signals.connection_closed.receivers:
            await signals.asend_fast(
                signals.connection_closed, sender=type(self), socket_id=conn.socket_id, identity=conn.identity
            )

    # -- client frames -------------------------------------------------------------------
    def allow_frame(self, conn: Connection) -> bool:
        """Token-bucket rate limit on client frames; return False to drop this one."""
        conn.last_seen = now = time.monotonic()
        conn.frames_in += 1
        self.hub.frames_in += 1
        limit = broadcasting_settings.CLIENT_RATE_LIMIT
        if not limit:
            return True
        state = conn._rate
        if state is None:
            conn._rate = [limit - 1.0, now, 0]
            return True
        tokens = min(float(limit), state[0] + (now - state[1]) * limit)
        state[1] = now
        if tokens >= 1.0:
            state[0] = tokens - 1.0
            state[2] = 0
            return True
        state[0] = tokens
        state[2] += 1
        return False

    def too_abusive(self, conn: Connection) -> bool:
        """True when a client keeps flooding after being told to slow down."""
        return conn._rate is not None and conn._rate[2] > broadcasting_settings.CLIENT_RATE_LIMIT

    # -- subscriptions -------------------------------------------------------------------
    async def join(self, conn: Connection, name: str, auth: Any = None) -> tuple[Any, list[dict] | None]:
        """Authorize and subscribe ``conn`` to ``name``; return (authorization, members).

        ``auth`` is the authorization of ``name`` made for this very subscription a moment ago
        (the URL's channel, checked before the handshake completed), so it is not made twice.
        """
        if len(conn.channels) >= broadcasting_settings.MAX_SUBSCRIPTIONS:
            raise ProtocolError(codes.ERR_4029_TOO_MANY_SUBSCRIPTIONS, channel=name)
        if auth is None:
            auth = await aauthorize(conn.identity, name, app=conn.app)
        members = None
        # The hub's name: the app's own (another app's "orders" is another channel).
        channel = conn.app.hub_name(auth.channel) if conn.app is not None else auth.channel
        if channel in conn.channels:
            if auth.kind is ChannelKind.PRESENCE:
                members = await self.hub.members(channel)
            return auth, members
        member = auth.member if auth.kind is ChannelKind.PRESENCE else None
        await self.subscribe(conn, channel, member, name)
        if auth.kind is ChannelKind.PRESENCE:
            members = await self.hub.members(channel)
        return auth, members

    async def subscribe(
        self, conn: Connection, channel: str, member: dict[str, Any] | None = None, name: str | None = None
    ) -> bool:
        """The one way a socket of either protocol joins an authorized ``channel`` (its hub name).

        ``MAX_SUBSCRIPTIONS`` (``ProtocolError`` 4029) and the hub's limits (``OverCapacity``
        becomes ``ProtocolError`` 4100) apply to every subscription; the ``subscribed`` signal
        is sent by ``joined`` once the answer is queued. ``name`` is the channel as the client
        wrote it (for the error). Returns False when ``conn`` is on ``channel`` already.
        """
        if channel in conn.channels:
            return False
        if len(conn.channels) >= broadcasting_settings.MAX_SUBSCRIPTIONS:
            raise ProtocolError(codes.ERR_4029_TOO_MANY_SUBSCRIPTIONS, channel=name or channel)
        try:
            await self.hub.subscribe(conn, channel, member)
        except OverCapacity as exc:
            raise ProtocolError(codes.ERR_4100_OVER_CAPACITY, exc.detail, name or channel) from None
        self._joined = channel  # its signal waits for the answer: see ``joined``
        return True

    async def joined(self, conn: Connection) -> None:
        """Send the ``subscribed`` signal for the channel just joined, once the answer is queued.

        Receivers may suspend (a sync one runs in a thread); sent before the answer, that pause let
        live messages reach the socket ahead of its ``subscribed`` frame and of its replay.
        """
        channel, self._joined = self._joined, None
        if channel is not None and signals.subscribed.receivers:
            await signals.asend_fast(
                signals.subscribed, sender=type(self), socket_id=conn.socket_id, channel=channel
            )

    async def leave(self, conn: Connection, channel: str) -> bool:
        left = await self.hub.unsubscribe(conn, channel)
        if left and signals.unsubscribed.receivers:
            await signals.asend_fast(
                signals.unsubscribed, sender=type(self), socket_id=conn.socket_id, channel=channel
            )
        return left
