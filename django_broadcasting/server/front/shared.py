"""What every socket of one uvicorn server shares, and the keepalive: one timer per server.

Uvicorn's implementations keep two timers per socket (the next ping, the pong deadline). Here one
timer per server walks the open sockets every quarter of the ping interval (or timeout): a socket
whose interval is up gets a ping; one that sent nothing at all (a pong, a message, anything) within
``ws_ping_timeout`` of an unanswered ping is closed with 1011, as uvicorn's would be.
"""

from __future__ import annotations

import asyncio
from typing import Any

from . import wire

PING_PAYLOAD = b"dbws"
PING = wire.frame(wire.OP_PING, PING_PAYLOAD)


class ServerShared:
    """What every socket of one uvicorn server shares (read once, not copied per socket)."""

    __slots__ = (
        "app", "loop", "root_path", "root_path_bytes", "asgi", "app_state", "connections", "tasks",
        "default_headers", "max_size", "ping_interval", "ping_timeout", "ticker", "protocol",
    )  # fmt: skip

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any]) -> None:
        if not config.loaded:
            config.load()  # pragma: no cover - uvicorn loads it before serving
        self.app = config.loaded_app
        self.loop = asyncio.get_event_loop()
        self.root_path = config.root_path
        self.root_path_bytes = config.root_path.encode("ascii")
        self.asgi = {"version": config.asgi_version, "spec_version": "2.4"}
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers = server_state.default_headers  # a list uvicorn refreshes (date)
        self.max_size = max_message_size(config.ws_max_size)
        interval = config.ws_ping_interval
        self.ping_interval = float(interval) if interval and interval > 0 else None
        self.ping_timeout = config.ws_ping_timeout if config.ws_ping_timeout else None
        self.ticker: asyncio.TimerHandle | None = None
        self.protocol: type | None = None  # the protocol class whose sockets the keepalive pings


_shared: dict[int, tuple[Any, ServerShared]] = {}


def shared_for(config: Any, server_state: Any, app_state: dict[str, Any], protocol: type) -> ServerShared:
    """Return the ``ServerShared`` of uvicorn's ``server_state`` (made on the first socket)."""
    entry = _shared.get(id(server_state))
    if entry is None or entry[0] is not server_state:
        entry = (server_state, ServerShared(config, server_state, app_state))
        entry[1].protocol = protocol
        _shared[id(server_state)] = entry
    return entry[1]


def max_message_size(configured: int | None) -> int:
    """The largest client message accepted: uvicorn's ``ws_max_size``, capped by the project's.

    The application refuses frames over ``MAX_FRAME_SIZE`` characters (error 4009); none of those
    takes more than four bytes per character, so a larger message is closed with 1009 here before
    it is buffered, whatever ``--ws-max-size`` says (uvicorn's default is 16 MiB).
    """
    from ...conf import broadcasting_settings

    ours = 4 * broadcasting_settings.MAX_FRAME_SIZE
    return min(configured, ours) if configured else ours


# -- keepalive: one timer per server, not two per socket -------------------------------------
def schedule_keepalive(shared: ServerShared) -> None:
    interval = shared.ping_interval
    if interval is None:
        return
    step = min(interval, shared.ping_timeout or interval) / 4
    shared.ticker = shared.loop.call_later(max(step, 0.05), _keepalive, shared)


def _keepalive(shared: ServerShared) -> None:
    """Ping sockets whose interval is up; close those that did not answer within the timeout."""
    shared.ticker = None
    now = shared.loop.time()
    interval = shared.ping_interval
    timeout = shared.ping_timeout
    ping = PING
    any_open = False
    for proto in list(shared.connections):
        if type(proto) is not shared.protocol or not proto.is_open():
            continue
        any_open = True
        if proto.pinged and timeout is not None and now - proto.pinged > timeout:
            proto.keepalive_timeout()
        elif now >= proto.ping_due and not proto.transport.is_closing():
            proto.ping_due = now + interval  # type: ignore[operator]
            if not proto.pinged:
                proto.pinged = now
            proto.transport.write(ping)
    if any_open:
        schedule_keepalive(shared)
