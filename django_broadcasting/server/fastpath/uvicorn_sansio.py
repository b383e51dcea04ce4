"""Direct writes under uvicorn's ``websockets-sansio`` implementation (private state it reads:
``proto.conn``, ``close_sent``, ``disconnected``, ``writable``; websockets' ``State``)."""

from __future__ import annotations

from typing import Any

from .base import Writer

__all__ = ["writer"]


def writer(proto: Any) -> Writer | None:
    conn = getattr(proto, "conn", None)
    transport = getattr(proto, "transport", None)
    writable = getattr(proto, "writable", None)
    if conn is None or transport is None or writable is None or conn.extensions:
        return None
    from websockets.protocol import State

    open_state = State.OPEN

    def write(data: bytes) -> bool:
        if (
            proto.close_sent
            or proto.disconnected
            or conn.state is not open_state
            or not writable.is_set()
            or transport.is_closing()
        ):
            return False
        transport.write(data)
        return True

    return write
