"""Direct writes under daphne: autobahn's ``sendPreparedMessage`` minus its logging (private state
it reads: autobahn's ``_perMessageCompress`` and ``send_queue``, Twisted's ``dataBuffer``,
``_tempDataBuffer``, ``_tempDataLen``; daphne's ``connections`` map)."""

from __future__ import annotations

from typing import Any

from ...conf import broadcasting_settings
from .base import SlowClient, Writer

__all__ = ["writer"]


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
