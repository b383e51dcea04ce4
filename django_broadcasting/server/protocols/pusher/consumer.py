"""``/app/{key}``: the Pusher Channels protocol 7 on the shared hub (Laravel Echo, pusher-js).

The consumer translates Pusher frames; channels, fan-out, presence and limits are the hub's and
``HubConsumer``'s, so a broadcast reaches native and Pusher clients alike. Private and presence
subscriptions carry an HMAC signature made by ``/broadcasting/auth`` (which ran the channel rule
for the HTTP request's user); public names are checked against the rules as on ``/ws``.

Close codes: the hub's native codes are announced to Pusher clients in Pusher terms (a restart,
1012, becomes ``pusher:error`` 4200 so pusher-js reconnects at once; token expiry 4009; a flood
4301). Pusher clients that receive but never send are pinged (``pusher:ping``) before the hub's
activity timeout would close them.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.exceptions import StopConsumer

from ....authorization import ChannelKind, canonical_name, channel_kind
from ....backends.cache import is_cache_channel
from ....conf import broadcasting_settings
from ....core import codes
from ....encryption import encryption_master_key, is_encrypted_channel
from ....exceptions import ChannelForbidden, InvalidChannelName, InvalidMessage, TokenExpired
from ....messages import Message, parse_json, validate_event_name
from ....pusher_apps import app_by_key
from ....pusher_signing import verify_channel, verify_user
from ...connection import Connection
from ..consumer import HubConsumer
from ..native.codec import ProtocolError
from . import codec as proto
from .connection import (
    PusherConnection,
    announced_activity_timeout,
    ensure_keepalive,
    pusher_connections,
)

logger = logging.getLogger("django_broadcasting.server.pusher")


class SubscriptionRefused(Exception):
    """A subscription that gets ``pusher:subscription_error`` (``status`` as an HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class PusherConsumer(HubConsumer):
    """Serve one Pusher protocol 7 client on ``/app/{key}``."""

    protocol = proto.PUSHER
    connection_class = PusherConnection

    # -- handshake -----------------------------------------------------------------------
    async def reject(self, code: int, message: str | None = None) -> None:
        """Accept, send ``pusher:error`` and close: how Pusher refuses a connection."""
        self.hub.count_error(code)
        await self.base_send({"type": "websocket.accept"})
        await self.base_send({"type": "websocket.send", "text": proto.error_frame(code, message)})
        await self.base_send({"type": "websocket.close", "code": code})
        raise StopConsumer

    async def websocket_connect(self, message: dict) -> None:
        key = self.scope.get("url_route", {}).get("kwargs", {}).get("key", "")
        app = app_by_key(key)
        if app is None:
            await self.reject(
                proto.PUSHER_4001_APP_NOT_FOUND, f"Application key {key[:64]!r} does not exist."
            )
        self.app = app
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        version = (query.get("protocol") or [None])[0]
        if version is not None and (
            not (version.isascii() and version.isdigit()) or int(version) not in proto.SUPPORTED_PROTOCOLS
        ):
            await self.reject(
                proto.PUSHER_4007_UNSUPPORTED_PROTOCOL, f"Unsupported protocol version {version[:10]!r}."
            )
        quota = app.max_connections  # PUSHER_MAX_CONNECTIONS, or the app's max_connections
        if (
            quota
            and sum(1 for c in pusher_connections(self.hub) if c.app is not None and c.app.id == app.id)
            >= quota
        ):
            await self.reject(proto.PUSHER_4004_OVER_QUOTA)
        conn = await self.open()
        ensure_keepalive(self.hub)
        conn.push(
            proto.event_frame(
                "pusher:connection_established",
                {
                    "socket_id": conn.socket_id,
                    "activity_timeout": announced_activity_timeout(),
                },
            )
        )

    def over_capacity(self, conn: Connection) -> None:
        self.hub.count_error(proto.PUSHER_4100_OVER_CAPACITY)
        if isinstance(conn, PusherConnection):
            conn.announce(proto.PUSHER_4100_OVER_CAPACITY, "Over capacity; try again later.")

    # -- frames --------------------------------------------------------------------------
    def error(self, conn: Connection, code: int | None, message: str) -> None:
        """Send a non-fatal ``pusher:error`` and count it for the metrics."""
        self.hub.count_error(code or codes.ERR_4000_BAD_REQUEST)
        conn.push(proto.error_frame(code, message))

    async def websocket_receive(self, message: dict) -> None:
        conn = self.conn
        if conn is None or conn.closed:
            return
        if not self.allow_frame(conn):
            self.error(conn, proto.PUSHER_4301_RATE_LIMITED, "Too many messages; slow down.")
            if self.too_abusive(conn) and isinstance(conn, PusherConnection):
                await conn.fail(proto.PUSHER_4301_RATE_LIMITED, "Too many messages; disconnected.")
            return
        try:
            event, data, channel = proto.parse(message.get("text"), broadcasting_settings.MAX_FRAME_SIZE)
            if event == "pusher:ping":
                conn.push(proto.event_frame("pusher:pong", {}))
            elif event == "pusher:pong":
                pass  # allow_frame() recorded the activity
            elif event == "pusher:subscribe":
                await self.pusher_subscribe(conn, data)
            elif event == "pusher:unsubscribe":
                await self.pusher_unsubscribe(conn, data)
            elif event == "pusher:signin":
                await self.pusher_signin(conn, data)
            elif event.startswith("client-"):
                await self.client_event(conn, event, data, channel)
            else:
                raise proto.PusherFrameError(f"Unsupported event {event[:60]!r}.")
        except proto.PusherFrameError as exc:
            self.error(conn, exc.code, exc.message)
        except Exception:
            logger.exception("error handling a Pusher frame on %s", conn.socket_id)
            self.error(conn, None, "Internal server error.")

    # -- subscriptions -------------------------------------------------------------------
    async def pusher_subscribe(self, conn: Connection, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("channel"), str) or not data["channel"]:
            raise proto.PusherFrameError("pusher:subscribe needs data.channel.")
        name = data["channel"]
        try:
            try:
                payload = await self._subscribe(conn, name, data)
            except SubscriptionRefused as exc:
                self.hub.count_error(codes.ERR_4030_FORBIDDEN)
                conn.push(proto.subscription_error_frame(name, exc.status, exc.message))
                return
            conn.push(proto.event_frame("pusher_internal:subscription_succeeded", payload, name))
            canonical = canonical_name(name)  # valid: the subscription succeeded
            if is_cache_channel(canonical):
                await self.hub.send_cached(conn, conn.app.hub_name(canonical))
        finally:
            await self.joined(conn)

    async def _subscribe(self, conn: Connection, name: str, data: dict) -> dict:
        try:
            canonical = canonical_name(name)
        except InvalidChannelName as exc:
            raise SubscriptionRefused(400, exc.detail) from None
        if name.startswith("#"):
            return await self._subscribe_reserved(conn, name)
        app = conn.app
        hub_name = app.hub_name(canonical)  # the channel of this socket's app
        if is_encrypted_channel(canonical) and encryption_master_key(app) is None:
            raise SubscriptionRefused(
                403,
                "Encrypted channels are not enabled on this server (no PUSHER_ENCRYPTION_MASTER_KEY_BASE64).",
            )
        presence = name.startswith("presence-") or canonical.startswith("presence.")
        if not (name.startswith("private-") or name.startswith("presence-")):
            if presence or channel_kind(canonical) is not ChannelKind.PUBLIC:
                prefixed = proto.client_name(canonical)
                raise SubscriptionRefused(
                    403, f"Channel {name!r} is not public: subscribe to {prefixed!r} with an auth signature."
                )
            try:
                await self.join(conn, name)  # the rules decide (STRICT_CHANNELS, public rules)
            except (ChannelForbidden, TokenExpired) as exc:
                raise SubscriptionRefused(403, exc.detail) from None
            except ProtocolError as exc:
                status = 429 if exc.code == codes.ERR_4100_OVER_CAPACITY else 400
                raise SubscriptionRefused(status, exc.message) from None
            return {}

        auth = data.get("auth")
        channel_data = data.get("channel_data") if presence else None
        if not isinstance(auth, str) or not auth:
            raise SubscriptionRefused(
                401, f"Channel {name!r} needs an auth signature (see /broadcasting/auth)."
            )
        if presence and not isinstance(channel_data, str):
            raise SubscriptionRefused(400, "Presence channels need channel_data (a JSON string).")
        if not verify_channel(auth, conn.socket_id, name, channel_data, app):
            raise SubscriptionRefused(401, f"Invalid signature for channel {name!r}.")
        if not presence and channel_kind(canonical) is ChannelKind.PUBLIC:
            # A public rule matched "private-X": events go out as "X", which this client would drop.
            raise SubscriptionRefused(400, f"Channel {canonical!r} is public: subscribe to {canonical!r}.")
        member = self._member(channel_data) if presence else None
        await self._subscribe_checked(conn, hub_name, member, name)
        if not presence:
            return {}
        members = await self.hub.members(hub_name)
        hash_ = {str(m["id"]): m.get("info", {}) for m in members}
        return {"presence": {"ids": list(hash_), "hash": hash_, "count": len(hash_)}}

    @staticmethod
    def _member(channel_data: str | None) -> dict[str, Any]:
        try:
            parsed = parse_json(channel_data or "")
        except ValueError:
            raise SubscriptionRefused(400, "channel_data is not JSON.") from None
        user_id = parsed.get("user_id") if isinstance(parsed, dict) else None
        if isinstance(user_id, bool) or not isinstance(user_id, (str, int)) or user_id == "":
            raise SubscriptionRefused(400, "channel_data needs a user_id (string or number).")
        info = parsed.get("user_info")
        return {"id": str(user_id), "info": info if info is not None else {}}

    async def _subscribe_reserved(self, conn: Connection, name: str) -> dict:
        """``#server-to-user-{id}``: only the socket signed in as that user (pusher:signin)."""
        user_id = conn.scope_info.get("pusher_user")
        if user_id is None or name != proto.SERVER_TO_USER_PREFIX + user_id:
            raise SubscriptionRefused(403, f"Channel {name!r} is reserved; sign in as its user first.")
        await self._subscribe_checked(conn, conn.app.hub_name(name), None, name)
        return {}

    async def _subscribe_checked(self, conn: Connection, hub_name: str, member: Any, name: str) -> None:
        """``HubConsumer.subscribe`` (limits, the ``subscribed`` signal), refusals as Pusher answers them."""
        try:
            await self.subscribe(conn, hub_name, member, name)
        except ProtocolError as exc:  # too many subscriptions; channels per process, presence info size
            status = 429 if exc.code == codes.ERR_4100_OVER_CAPACITY else 400
            raise SubscriptionRefused(status, exc.message) from None

    async def pusher_unsubscribe(self, conn: Connection, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("channel"), str):
            raise proto.PusherFrameError("pusher:unsubscribe needs data.channel.")
        try:
            canonical = canonical_name(data["channel"])
        except InvalidChannelName as exc:
            raise proto.PusherFrameError(exc.detail) from None
        # Pusher answers nothing; unsubscribing from a channel one is not on is not an error.
        await self.leave(conn, conn.app.hub_name(canonical))

    # -- user authentication -------------------------------------------------------------
    async def pusher_signin(self, conn: Connection, data: Any) -> None:
        auth = data.get("auth") if isinstance(data, dict) else None
        user_data = data.get("user_data") if isinstance(data, dict) else None
        user_id = None
        if isinstance(user_data, str) and verify_user(auth, conn.socket_id, user_data, conn.app):
            try:
                parsed = parse_json(user_data)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and isinstance(parsed.get("id"), str) and parsed["id"]:
                user_id = parsed["id"]
        if user_id is None:
            logger.info("pusher:signin refused on %s", conn.socket_id)
            if isinstance(conn, PusherConnection):
                await conn.fail(
                    proto.PUSHER_4009_UNAUTHORIZED, "Invalid user authentication (pusher:signin)."
                )
            return
        previous = conn.scope_info.get("pusher_user")
        if previous is not None and previous != user_id:
            await self.leave(conn, conn.app.hub_name(proto.SERVER_TO_USER_PREFIX + previous))
        conn.scope_info["pusher_user"] = user_id
        name = proto.SERVER_TO_USER_PREFIX + user_id
        try:
            try:
                await self.subscribe(conn, conn.app.hub_name(name), None, name)
            except ProtocolError:
                # Signed in all the same; the channel is refused like any subscription over the
                # limit when the client subscribes to it (pusher-js does, right after this answer).
                pass
            conn.push(proto.event_frame("pusher:signin_success", {"user_data": user_data}))
        finally:
            await self.joined(conn)

    # -- client events -------------------------------------------------------------------
    def allow_client_event(self, conn: Connection) -> bool:
        """Token bucket of the app's client events per second (``PUSHER_CLIENT_EVENT_RATE_LIMIT``)."""
        limit = conn.app.client_event_rate_limit
        if not limit:
            return True
        now = time.monotonic()
        tokens, last = conn.scope_info.get("client_events", (float(limit), now))
        tokens = min(float(limit), tokens + (now - last) * limit)
        allowed = tokens >= 1.0
        conn.scope_info["client_events"] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    async def client_event(self, conn: Connection, event: str, data: Any, name: str | None) -> None:
        if not name:
            raise proto.PusherFrameError("Client events need a channel.")
        try:
            canonical = canonical_name(name)
        except InvalidChannelName as exc:
            raise proto.PusherFrameError(exc.detail) from None
        hub_name = conn.app.hub_name(canonical)
        if hub_name not in conn.channels:
            raise proto.PusherFrameError(f"Not subscribed to channel {name!r}.")
        # The kind of the channel subscribed decides, not the prefix typed in this frame: "general"
        # and "private-general" are one channel, and a public one.
        kind = channel_kind(canonical)
        if kind is ChannelKind.PUBLIC:
            raise proto.PusherFrameError("Client events are only allowed on private and presence channels.")
        if not conn.app.enable_client_messages:
            raise proto.PusherFrameError("Client events are not enabled for this app.")
        if is_encrypted_channel(canonical):
            # The server could only relay them in plaintext, and pusher-js never sends them: refused
            # like the other client events that are not allowed (pusher:error, code null).
            raise proto.PusherFrameError(
                f"Client event rejected: client events are not supported on encrypted channel {name!r}."
            )
        if not self.allow_client_event(conn):
            raise proto.PusherFrameError(
                proto.ERROR_MESSAGES[proto.PUSHER_4301_RATE_LIMITED], proto.PUSHER_4301_RATE_LIMITED
            )
        # "presence-X" and "private-presence-X" are both "presence.X": the sender is named either way.
        user_id = conn.scope_info.get("presence", {}).get(hub_name) if kind is ChannelKind.PRESENCE else None
        try:
            validate_event_name(event)
            message = Message(hub_name, event, data, socket_id=conn.socket_id, user_id=user_id)
        except InvalidMessage as exc:
            raise proto.PusherFrameError(exc.detail) from None
        message.origin = "whisper"
        await self.hub.relay([message])
