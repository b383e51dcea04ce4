"""Direct writes under uvicorn's legacy ``websockets`` implementation (private state it reads:
``_paused``, ``closed_event``, ``handshake_completed_event``, the negotiated ``extensions``)."""

from __future__ import annotations

from typing import Any

from .base import Writer

__all__ = ["writer"]


def writer(proto: Any) -> Writer | None:
    # The legacy implementation finishes its handshake after ``websocket.accept`` returns, so
    # everything, extensions included, is checked per write.
    from websockets.protocol import State

    open_state = State.OPEN

    def write(data: bytes) -> bool:
        if (
            proto.state is not open_state
            or proto.extensions
            or proto._paused
            or proto.closed_event.is_set()
            or not proto.handshake_completed_event.is_set()
            or proto.transport is None
            or proto.transport.is_closing()
        ):
            return False
        proto.transport.write(data)
        return True

    return write
