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
from urllib.parse import parse_qs

from asgiref.sync import markcoroutinefunction
from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer

from .. import signals
from ..auth.identity import ANONYMOUS
from ..authorization import ChannelKind, aauthorize
from ..backends.cache import is_cache_channel
from ..conf import broadcasting_settings
from ..encryption import is_encrypted_channel
from ..exceptions import (
    AuthenticationFailed,
    BroadcastError,
    ChannelForbidden,
    InvalidChannelName,
    InvalidMessage,
    OverCapacity,
)
from ..messages import Message, validate_event_name
from ..pusher_apps import default_app
from ..core import codes
from .addresses import client_address, limited
from .connection import Connection
from .hub import get_hub, mark_serving
from .protocols.native import NATIVE, ProtocolError, error_frame, frame, parse, require_str

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
        try:
            await self.hub.subscribe(conn, channel, member)
        except OverCapacity as exc:
            raise ProtocolError(codes.ERR_4100_OVER_CAPACITY, exc.detail, name) from None
        if auth.kind is ChannelKind.PRESENCE:
            members = await self.hub.members(channel)
        self._joined = channel  # its signal waits for the answer: see ``joined``
        return auth, members

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


class BroadcastConsumer(HubConsumer):
    """The protocol: ``/ws?channel=X`` and ``/ws/X``, actions ping/subscribe/unsubscribe/whisper."""

    protocol = NATIVE

    def url_channel(self) -> str | None:
        kwargs = self.scope.get("url_route", {}).get("kwargs", {})
        if kwargs.get("channel"):
            return kwargs["channel"]
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        values = query.get("channel")
        return values[0] if values else None

    async def websocket_connect(self, message: dict) -> None:
        name = self.url_channel()
        auth = None
        if name:
            # The URL's channel is checked before the handshake completes, so a refusal
            # is an HTTP 403, not an accepted-then-closed socket. The client sees only the
            # status, so the reason is logged at WARNING (shown by Python's default logging).
            try:
                auth = await aauthorize(self.identity, name)
            except (ChannelForbidden, InvalidChannelName, AuthenticationFailed) as exc:
                logger.warning("WebSocket refused: channel %r: %s", name, getattr(exc, "detail", exc))
                await self.refuse()
        conn = await self.open()
        conn.push(
            frame(
                "connected",
                {
                    "socket_id": conn.socket_id,
                    "activity_timeout": broadcasting_settings.ACTIVITY_TIMEOUT,
                    "user_id": conn.identity.user_id,
                },
            )
        )
        if name:
            await self.action_subscribe(conn, {"action": "subscribe", "channel": name}, auth)

    async def websocket_receive(self, message: dict) -> None:
        conn = self.conn
        if conn is None or conn.closed:
            return
        if not self.allow_frame(conn):
            self.error(conn, codes.ERR_4080_RATE_LIMITED)
            if self.too_abusive(conn):
                await conn.close(codes.CLOSE_4008_RATE_LIMITED)
            return
        body: dict = {}
        try:
            body = parse(message.get("text"), broadcasting_settings.MAX_FRAME_SIZE)
            handler = getattr(self, "action_" + body["action"].replace(":", "_").replace("-", "_"), None)
            if handler is None:
                raise ProtocolError(codes.ERR_4001_UNKNOWN_ACTION, f"Unknown action {body['action'][:50]!r}.")
            await handler(conn, body)
        except ProtocolError as exc:
            self.error(conn, exc.code, exc.message, exc.channel)
        except BroadcastError as exc:
            channel = body.get("channel") if isinstance(body.get("channel"), str) else None
            self.error(conn, exc.code, exc.detail, channel)
        except Exception:
            logger.exception("error handling a client frame on %s", conn.socket_id)
            self.error(conn, codes.ERR_4500_INTERNAL)

    def error(
        self, conn: Connection, code: int, message: str | None = None, channel: str | None = None
    ) -> None:
        """Send an error frame and count it for the metrics."""
        self.hub.count_error(code)
        conn.push(error_frame(code, message, channel))

    # -- actions -------------------------------------------------------------------------
    async def action_ping(self, conn: Connection, body: dict) -> None:
        conn.push(frame("pong", body.get("data") if body.get("data") is not None else {}))

    async def action_subscribe(self, conn: Connection, body: dict, auth: Any = None) -> None:
        name = require_str(body, "channel")
        try:
            auth, members = await self.join(conn, name, auth)
        except ChannelForbidden as exc:
            raise ProtocolError(codes.ERR_4030_FORBIDDEN, exc.detail, name) from None
        except InvalidChannelName as exc:
            raise ProtocolError(codes.ERR_4003_INVALID_CHANNEL, exc.detail, name) from None
        data: dict[str, Any] = {"channel": auth.channel, "type": auth.kind.value}
        if members is not None:
            data["members"] = members
            data["count"] = len(members)
            data["me"] = auth.member
        try:
            conn.push(frame("subscribed", data, auth.channel))
            recover = getattr(self.hub, "recover", None)
            since = body.get("last_id", body.get("since"))
            if recover is not None and since is not None:
                await recover(conn, auth.channel, since)
            elif is_cache_channel(auth.channel):  # a recovering client gets what it missed instead
                await self.hub.send_cached(conn, auth.channel)
        finally:
            await self.joined(conn)

    async def action_unsubscribe(self, conn: Connection, body: dict) -> None:
        name = require_str(body, "channel")
        channel = self._subscribed_name(conn, name)
        await self.leave(conn, channel)
        conn.push(frame("unsubscribed", {"channel": channel}, channel))

    async def action_whisper(self, conn: Connection, body: dict) -> None:
        name = require_str(body, "channel")
        event = require_str(body, "event")
        channel = self._subscribed_name(conn, name)
        auth_kind = await self._kind(conn, channel)
        if auth_kind is ChannelKind.PUBLIC:
            raise ProtocolError(codes.ERR_4031_WHISPER_NOT_ALLOWED, channel=channel)
        if is_encrypted_channel(channel):
            raise ProtocolError(
                codes.ERR_4031_WHISPER_NOT_ALLOWED, "Whispers are not allowed on encrypted channels.", channel
            )
        if not event.startswith("client-"):
            event = "client-" + event
        try:
            validate_event_name(event)
            message = Message(
                channel,
                event,
                body.get("data"),
                socket_id=conn.socket_id,
                user_id=conn.identity.user_id if auth_kind is ChannelKind.PRESENCE else None,
                history=broadcasting_settings.HISTORY_CLIENT_EVENTS,
            )
        except InvalidMessage as exc:
            raise ProtocolError(codes.ERR_4005_INVALID_EVENT, exc.detail, channel) from None
        message.origin = "whisper"
        await self.hub.relay([message])

    def _subscribed_name(self, conn: Connection, name: str) -> str:
        from ..authorization import canonical_name

        try:
            channel = canonical_name(name)
        except InvalidChannelName as exc:
            raise ProtocolError(codes.ERR_4003_INVALID_CHANNEL, exc.detail, name) from None
        if channel not in conn.channels:
            raise ProtocolError(codes.ERR_4004_NOT_SUBSCRIBED, channel=channel)
        return channel

    async def _kind(self, conn: Connection, channel: str) -> ChannelKind:
        from ..authorization import channel_kind

        return channel_kind(channel)
