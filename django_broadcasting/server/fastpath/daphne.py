"""Daphne's private state, in one place: direct writes, the standard close codes, the shutdown hook.

- ``writer``: direct writes, autobahn's ``sendPreparedMessage`` minus its logging (private state
  it reads: autobahn's ``_perMessageCompress`` and ``send_queue``, Twisted's ``dataBuffer``,
  ``_tempDataBuffer``, ``_tempDataLen``; daphne's ``connections`` map).
- ``allow_standard_close_codes``: autobahn (under daphne) refuses any server close code other
  than 1000 and 3000-4999, so ``{"type": "websocket.close", "code": 1012}`` raises inside daphne
  and the client sees an abnormal 1006 instead of "service restart". RFC 6455 allows
  1001/1011/1012/1013 from a server, and uvicorn sends 1012 on shutdown, so daphne's
  ``serverClose`` is patched to send those codes as-is.
- ``install_shutdown_hook``: daphne (Twisted) has no ASGI lifespan, and on SIGTERM/SIGINT it
  drops sockets without a close frame. A Twisted "before shutdown" trigger runs first and Twisted
  waits for the Deferred it returns, so every client gets a 1012 and reconnects.

The patch and the hook are applied only for the daphne, autobahn and Twisted versions in
``fastpath.TESTED["daphne"]``; with any other version the fallback is daphne's own behaviour
(sockets dropped at shutdown, 1012 refused), logged once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from ...conf import broadcasting_settings
from .base import SlowClient, Writer

__all__ = ["allow_standard_close_codes", "install_shutdown_hook", "writer"]

_STANDARD_SERVER_CODES = frozenset({1001, 1011, 1012, 1013})
_patched = False


def _twisted_buffered(transport: Any) -> int:
    return len(getattr(transport, "dataBuffer", b"")) + getattr(transport, "_tempDataLen", 0)


def writer(server: Any, proto: Any) -> Writer | None:
    limit = broadcasting_settings.OUTGOING_BUFFER
    connections = getattr(server, "connections", None)
    open_state = getattr(proto, "STATE_OPEN", None)
    if connections is None or open_state is None:
        return None
    try:
        from twisted.internet.tcp import Connection as TCPConnection
    except ImportError:  # pragma: no cover - daphne always brings Twisted
        return None

    def write(data: bytes) -> bool:
        # autobahn's sendPreparedMessage, minus its debug logging: no compression negotiated,
        # nothing queued ahead of us, the protocol open and daphne not told of a disconnect.
        if proto.state != open_state or proto._perMessageCompress is not None or proto.send_queue:
            return False
        info = connections.get(proto)
        if info is None or info.get("disconnected"):
            return False
        transport = proto.transport
        if (
            isinstance(transport, TCPConnection)
            and transport.connected
            and not transport.disconnecting
            and not transport.dataBuffer
            and not transport._tempDataBuffer
        ):
            # Nothing buffered: send now, as the reactor would on its next turn, without
            # registering the socket for writability and waiting for the selector (that round
            # trip costs several times the send itself). Whatever the kernel does not take
            # goes to Twisted's buffer, in order.
            written = transport.writeSomeData(data)
            if not isinstance(written, int):  # connection lost: the ASGI path reports it
                return False
            if written >= len(data):
                return True
            data = data[written:]
        elif _twisted_buffered(transport) > limit * len(data):
            # Daphne never suspends a send, so Twisted's buffer is the only queue a client
            # that stops reading fills: bound it as the ASGI backlog is (OUTGOING_BUFFER frames).
            raise SlowClient
        transport.write(data)
        return True

    return write


def allow_standard_close_codes() -> bool:
    """Patch daphne's ``serverClose`` so 1001/1011/1012/1013 reach the client (idempotent).

    Return True when the patch is in place (daphne installed, its version contract-tested).
    """
    global _patched
    if _patched:
        return True
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # pragma: no cover - daphne not installed
        return False
    from . import _gate

    if not _gate("daphne"):
        return False
    original = WebSocketProtocol.serverClose

    def server_close(self: Any, code: int | None = None) -> None:
        if code in _STANDARD_SERVER_CODES and self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code)

    WebSocketProtocol.serverClose = server_close
    _patched = True
    return True


def install_shutdown_hook(stop: Callable[[], Awaitable[Any]]) -> bool:
    """Run ``stop()`` before Twisted's shutdown, and wait for it (a no-op outside daphne).

    Return True when the hook was installed.
    """
    if "twisted.internet.reactor" not in sys.modules:
        return False
    if not allow_standard_close_codes():
        return False
    from twisted.internet import defer, reactor

    def before_shutdown() -> Any:
        return defer.Deferred.fromFuture(asyncio.ensure_future(stop()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
    return True
