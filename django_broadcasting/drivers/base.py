"""``BaseDriver``: the contract every broadcasting driver implements.

A driver moves a validated ``Message`` from the publishing process to whatever delivers
it (the server processes' hubs, a log, an outbox). Drivers are async at heart; the sync
methods are a single ``async_to_sync`` shim written here once.

A custom driver subclasses ``BaseDriver`` and implements ``abroadcast``; the
``broadcast_private`` and ``driver_name`` have sensible defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync

if TYPE_CHECKING:
    from ..messages import Message
    from ..server.transport import HubTransport


class BaseDriver:
    """Base class for drivers. ``alias`` is the key under ``BROADCASTING['DRIVERS']``."""

    #: The ``driver_name()``; subclasses set it.
    name: str = "base"

    def __init__(self, alias: str, options: Mapping[str, Any] | None = None) -> None:
        self.alias = alias
        self.options = dict(options or {})

    def driver_name(self) -> str:
        """Return the driver's short name (``websocket``, ``redis``, ``log``, ...)."""
        return self.name

    async def abroadcast(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` (one per channel). Subclasses must implement this."""
        raise NotImplementedError(f"{type(self).__name__} must implement abroadcast()")

    async def abroadcast_private(self, messages: Sequence[Message]) -> None:
        """Publish to private channels; the same as ``abroadcast`` unless a driver differs."""
        await self.abroadcast(messages)

    def broadcast(self, messages: Sequence[Message]) -> None:
        """Sync shim over ``abroadcast``."""
        async_to_sync(self.abroadcast)(messages)

    def broadcast_private(self, messages: Sequence[Message]) -> None:
        """Sync shim over ``abroadcast_private``."""
        async_to_sync(self.abroadcast_private)(messages)

    def create_transport(self) -> HubTransport | None:
        """Return the transport a server process's hub listens on, or None if there is none.

        Drivers that carry messages between processes (websocket, redis) return one; the
        log, null and memory drivers do not, and a server using them only delivers what is
        published inside its own process.
        """
        return None

    async def aclose(self) -> None:
        """Release connections and pools. Called on reset and shutdown."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"
