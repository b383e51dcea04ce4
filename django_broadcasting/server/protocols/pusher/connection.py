"""Pusher sockets: close codes in Pusher terms, keepalive pings, shutdown and termination.

``PusherConnection`` announces every close with ``pusher:error`` in Pusher's codes (a restart,
1012, is 4200 so pusher-js reconnects at once; token expiry 4009; a flood 4301). The keepalive
task pings Pusher clients that receive but never send before the hub's activity timeout would
close them, and under uvicorn a signal hook sends 4200 before uvicorn closes sockets with 1012.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from ....conf import broadcasting_settings
from ....core import codes
from ...connection import Connection
from ...fastpath.uvicorn import wrap_signal_handlers
from . import codec as proto

# Native close codes the hub and HubConsumer use, in Pusher terms.
_CLOSE_MAP = {
    codes.WS_1012_SERVICE_RESTART: proto.PUSHER_4200_RECONNECT,
    codes.CLOSE_4011_TOKEN_EXPIRED: proto.PUSHER_4009_UNAUTHORIZED,
    codes.CLOSE_4008_RATE_LIMITED: proto.PUSHER_4301_RATE_LIMITED,
    codes.CLOSE_4001_UNAUTHORIZED: proto.PUSHER_4009_UNAUTHORIZED,
}


class PusherConnection(Connection):
    """A Pusher socket: closes are announced with ``pusher:error`` first, in Pusher's codes."""

    __slots__ = ()

    def announce(self, code: int, message: str | None = None) -> None:
        """Push ``pusher:error`` with ``code`` once, before the socket is closed with it."""
        if not self.scope_info.get("announced"):
            self.scope_info["announced"] = True
            self.push(proto.error_frame(code, message))

    async def close(self, code: int) -> None:
        code = _CLOSE_MAP.get(code, code)
        if 4000 <= code < 5000 and not self._close_sent:
            self.announce(code)
        await super().close(code)

    async def fail(self, code: int, message: str | None = None) -> None:
        """Send ``pusher:error`` and close with ``code``."""
        self.announce(code, message)
        await super().close(code)


def pusher_connections(hub: Any) -> list[PusherConnection]:
    return [c for c in hub.connections.values() if isinstance(c, PusherConnection)]


# -- keepalive ---------------------------------------------------------------------------------
_keepalive: weakref.WeakKeyDictionary[Any, asyncio.Task] = weakref.WeakKeyDictionary()
PING_FRAME = proto.event_frame("pusher:ping", {})


def announced_activity_timeout() -> int:
    """The ``activity_timeout`` told to clients: the server's (Pusher's 120 s when it is off).

    Clients that stay silent get a ``pusher:ping`` after half of it (see the keepalive), so a
    client alive on the network never reaches the hub's timeout, however busy its channels are.
    """
    timeout = broadcasting_settings.ACTIVITY_TIMEOUT
    return max(1, round(timeout)) if timeout else 120


async def _keepalive_loop(hub: Any) -> None:
    # pusher-js only pings when it has *received* nothing for a while; a client on a busy
    # channel never does, and the hub would close it as silent. Ask silent clients for a pong.
    while True:
        timeout = broadcasting_settings.ACTIVITY_TIMEOUT
        if not timeout:
            await asyncio.sleep(5.0)
            continue
        await asyncio.sleep(min(5.0, timeout / 4))
        now = time.monotonic()
        for conn in pusher_connections(hub):
            pinged = conn.scope_info.get("pinged_at", 0.0)
            if now - conn.last_seen > timeout / 2 and now - pinged > timeout / 4:
                conn.scope_info["pinged_at"] = now
                conn.push(PING_FRAME)


def ensure_keepalive(hub: Any) -> None:
    task = _keepalive.get(hub)
    if task is None or task.done():
        _keepalive[hub] = asyncio.get_running_loop().create_task(_keepalive_loop(hub))
        _install_uvicorn_shutdown_hook(hub)


async def _close_pusher_sockets(hub: Any) -> None:
    closing = [conn.close(codes.WS_1012_SERVICE_RESTART) for conn in pusher_connections(hub)]
    if closing:
        await asyncio.gather(*closing, return_exceptions=True)


def _install_uvicorn_shutdown_hook(hub: Any) -> None:
    """Under uvicorn, tell Pusher clients 4200 on SIGTERM/SIGINT before uvicorn closes them.

    Uvicorn closes every WebSocket with 1012 itself, before the lifespan shutdown runs; pusher-js
    treats 1012 as a plain disconnect. Its signal handler only sets a flag that its main loop
    checks every 0.1 s, so closes scheduled from a wrapping handler go out first. (Daphne's
    shutdown goes through the hub, which reaches ``PusherConnection.close`` already.)
    """
    wrap_signal_handlers(lambda: _close_pusher_sockets(hub))


async def terminate_user_connections(user_id: str, app_id: str | None = None) -> int:
    """Close this process's sockets of ``user_id`` (signed in, or by token/session); return the count.

    ``app_id`` limits it to the sockets of that app (native ``/ws`` sockets belong to the default
    app); None closes the user's sockets of every app.
    """
    from ...hub import get_hub

    hub = get_hub()
    closing = []
    for conn in list(hub.connections.values()):
        if app_id is not None and (conn.app is None or conn.app.id != app_id):
            continue
        signed_in = conn.scope_info.get("pusher_user")
        if signed_in == user_id or (signed_in is None and conn.identity.user_id == user_id):
            if isinstance(conn, PusherConnection):
                closing.append(
                    conn.fail(proto.PUSHER_4009_UNAUTHORIZED, "Connection terminated by the application.")
                )
            else:
                closing.append(conn.close(codes.CLOSE_4001_UNAUTHORIZED))
    for coro in closing:
        await coro
    return len(closing)
