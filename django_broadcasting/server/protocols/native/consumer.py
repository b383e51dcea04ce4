"""The native protocol's consumer: ``/ws?channel=X`` and ``/ws/X``, actions ping/subscribe/unsubscribe/whisper.

Frames are encoded by ``native.codec``; the handshake, limits and the one authorize ->
subscribe path are ``HubConsumer``'s (``server/protocols/consumer.py``).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs

from ....authorization import ChannelKind, aauthorize
from ....backends.cache import is_cache_channel
from ....conf import broadcasting_settings
from ....core import codes
from ....encryption import is_encrypted_channel
from ....exceptions import (
    AuthenticationFailed,
    BroadcastError,
    ChannelForbidden,
    InvalidChannelName,
    InvalidMessage,
)
from ....messages import Message, validate_event_name
from ...connection import Connection
from ..consumer import HubConsumer
from .codec import NATIVE, ProtocolError, error_frame, frame, parse, require_str

logger = logging.getLogger("django_broadcasting.server")

__all__ = ["BroadcastConsumer"]


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
        from ....authorization import canonical_name

        try:
            channel = canonical_name(name)
        except InvalidChannelName as exc:
            raise ProtocolError(codes.ERR_4003_INVALID_CHANNEL, exc.detail, name) from None
        if channel not in conn.channels:
            raise ProtocolError(codes.ERR_4004_NOT_SUBSCRIBED, channel=channel)
        return channel

    async def _kind(self, conn: Connection, channel: str) -> ChannelKind:
        from ....authorization import channel_kind

        return channel_kind(channel)
