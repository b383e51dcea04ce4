"""``Backend``: the one contract between publishers, a transport and the server's hub.

A backend owns both sides of one transport:

- the **publish side**: ``apublish(messages)`` (the one async implementation) and
  ``publish(messages)`` for sync callers, each returning a ``PublishReceipt`` that says who
  accepted the messages;
- the **subscribe side**, used by a server process's hub: ``create_transport()`` (how the
  process hears broadcasts published elsewhere), ``create_presence(host)`` (who is on a
  presence channel), ``create_history(transport)`` (ids and recovery) and
  ``acluster_stats()`` (every node's figures).

The defaults are the local pieces: no transport, presence and history in this process's
memory, stats of this process only. Publish-only backends (log, null, memory, pusher)
implement ``apublish`` and nothing else. A third-party backend subclasses ``Backend`` and
is named by dotted path in ``BROADCASTING["DRIVERS"][alias]["BACKEND"]``.

Nothing here imports ``server/`` or ``http/``: servers build on backends, never the reverse.
The running server registers itself with ``register_local_server()`` (``core/serving.py``,
re-exported here) so that backends and stats readers in the same process can reach it
without an import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from asgiref.sync import async_to_sync

from ..conf import broadcasting_settings
from ..core.serving import LocalServer, local_server, register_local_server
from .cache import ChannelCache, MemoryChannelCache
from .history import HistoryStore, MemoryHistory
from .occupancy import LocalOccupancy, OccupancyStore
from .presence import LocalPresence, PresenceStore

if TYPE_CHECKING:
    from ..messages import Message

__all__ = [
    "Backend",
    "AdminLink",
    "HubTransport",
    "LocalServer",
    "OnMessage",
    "PresenceHost",
    "PublishReceipt",
    "local_server",
    "register_local_server",
    "stats_totals",
]

#: Called by a transport with each broadcast it hears (the transport dict of a ``Message``).
OnMessage = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class PublishReceipt:
    """What a publish achieved: who accepted the messages, and the history ids they got.

    ``accepted_by`` is a short human description ("the server at 127.0.0.1:8000",
    "Redis at 127.0.0.1:6379/0", "the log"); ``ids`` has one entry per message (None when no
    history id was assigned); ``server`` is the identity a server answered, when one did.
    """

    accepted_by: str
    count: int = 0
    ids: tuple[str | None, ...] = ()
    server: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.count} message(s) accepted by {self.accepted_by}"


class HubTransport(Protocol):
    """How a server process hears broadcasts published in other processes."""

    @property
    def state(self) -> dict[str, Any]:
        """The link's health for stats (e.g. ``{"connected", "reconnects", "channels", "last_error"}``)."""
        ...

    async def start(self, on_message: OnMessage) -> None: ...
    async def subscribe(self, channel: str) -> None: ...
    async def unsubscribe(self, channel: str) -> None: ...
    async def stop(self) -> None: ...


@runtime_checkable
class PresenceHost(Protocol):
    """What a cluster-wide presence store needs from the server process that owns it."""

    node_id: str

    def stats(self) -> dict[str, Any]: ...
    async def announce(
        self, channel: str, event: str, data: dict[str, Any], socket_id: str | None
    ) -> None: ...
    async def relay(self, messages: Sequence[Message]) -> None: ...


class AdminLink(Protocol):
    """A server process's link to the admin pages and the HTTP API of other processes (redis backend)."""

    async def run(self) -> None: ...

    async def wait_ready(self, timeout: float) -> None:
        """Return once other processes can reach this one (at most ``timeout`` seconds)."""
        ...


#: Seconds a debug console page's watch lasts without a refresh (the page refreshes it every poll).
CONSOLE_WATCH_TTL = 15.0


_SUMMED = ("connections", "connections_total", "messages_in", "deliveries", "frames_in", "presence_members")


def stats_totals(nodes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Add up per-node figures; ``channels`` maps each channel to its subscribers on all nodes."""
    out: dict[str, Any] = {key: 0 for key in _SUMMED}
    channels: dict[str, int] = {}
    errors: dict[str, int] = {}
    for node in nodes:
        for key in _SUMMED:
            value = node.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] += value
        for name, count in (node.get("channels") or {}).items():
            channels[name] = channels.get(name, 0) + int(count)
        for code, count in (node.get("errors") or {}).items():
            errors[str(code)] = errors.get(str(code), 0) + int(count)
    out["channels"] = channels
    out["subscriptions"] = sum(channels.values())
    out["errors"] = errors
    return out


class Backend:
    """Base class of every backend (driver). ``alias`` is its key in ``BROADCASTING['DRIVERS']``.

    Subclasses implement ``apublish``. Older drivers that implement ``abroadcast`` instead
    keep working: each of the two defaults calls the other.
    """

    #: Short name shown in stats and messages (``websocket``, ``redis``, ``log``, ...).
    name: str = "base"
    #: True when the backend carries messages between processes and machines on its own.
    cluster_wide: bool = False
    #: True for test doubles that record what the application broadcast: events for end-to-end
    #: encrypted channels reach them unsealed (every other backend gets them sealed, see ``encryption``).
    accepts_plaintext: bool = False

    def __init__(self, alias: str, options: Mapping[str, Any] | None = None) -> None:
        self.alias = alias
        self.options = dict(options or {})

    def driver_name(self) -> str:
        """Return the backend's short name."""
        return self.name

    def describe(self) -> str:
        """Return where this backend delivers, for messages such as "accepted by ..."."""
        return f"the {self.name} driver"

    # -- publish side ----------------------------------------------------------------------
    async def apublish(self, messages: Sequence[Message]) -> PublishReceipt:
        """Publish built ``messages`` (one per channel); return who accepted them."""
        if type(self).abroadcast is Backend.abroadcast:
            raise NotImplementedError(f"{type(self).__name__} must implement apublish()")
        await self.abroadcast(messages)
        return PublishReceipt(self.describe(), len(messages))

    def publish(self, messages: Sequence[Message]) -> PublishReceipt:
        """Publish from sync code. Backends with a sync client override this to skip the event loop."""
        return async_to_sync(self.apublish)(messages)

    async def abroadcast(self, messages: Sequence[Message]) -> None:
        """Publish ``messages`` (older name of ``apublish``, without the receipt)."""
        if type(self).apublish is Backend.apublish:
            raise NotImplementedError(f"{type(self).__name__} must implement apublish()")
        await self.apublish(messages)

    async def abroadcast_private(self, messages: Sequence[Message]) -> None:
        """Publish to private channels; the same as ``abroadcast`` unless a backend differs."""
        await self.abroadcast(messages)

    def broadcast(self, messages: Sequence[Message]) -> None:
        """Sync twin of ``abroadcast``."""
        self.publish(messages)

    def broadcast_private(self, messages: Sequence[Message]) -> None:
        """Sync twin of ``abroadcast_private``."""
        async_to_sync(self.abroadcast_private)(messages)

    # -- subscribe side (used by a server process's hub) ---------------------------------------
    def create_transport(self) -> HubTransport | None:
        """Return the transport a server's hub listens on, or None (single process)."""
        return None

    def create_presence(self, host: PresenceHost) -> PresenceStore:
        """Return the presence store of a server process (default: this process's memory)."""
        return LocalPresence()

    def create_occupancy(self, node: str) -> OccupancyStore:
        """Return the record of which server processes hold which channels (default: this one only)."""
        return LocalOccupancy()

    def create_history(self, transport: HubTransport | None) -> HistoryStore | None:
        """Return the history store, or None when history is off or cannot be kept.

        The default keeps it in memory when this process sees every message (no transport);
        a transport that does not number messages across processes has no shared history.
        """
        if not broadcasting_settings.HISTORY_ENABLED or not broadcasting_settings.HISTORY_SIZE:
            return None
        if transport is None:
            return MemoryHistory(
                broadcasting_settings.HISTORY_SIZE,
                broadcasting_settings.HISTORY_TTL,
                channel_bytes=broadcasting_settings.HISTORY_CHANNEL_MAX_BYTES,
                total_bytes=broadcasting_settings.HISTORY_MAX_BYTES,
            )
        return None

    def create_cache(self, transport: HubTransport | None) -> ChannelCache:
        """Return the store of cache channels' last events (default: this process's memory).

        The hub writes a memory store as it delivers: complete with one server process; with a
        transport that spans processes, each process keeps what it heard. Backends that share a
        store between processes (redis) have their publishers write it instead.
        """
        return MemoryChannelCache(
            broadcasting_settings.CACHE_CHANNEL_TTL,
            broadcasting_settings.MAX_CHANNELS,
            broadcasting_settings.CACHE_CHANNEL_MAX_BYTES,
        )

    async def acluster_stats(self) -> dict[str, Any]:
        """Return every node's figures: ``{"nodes", "node_count", "totals", "source"}``.

        The default knows only this process's server, when it serves WebSockets.
        """
        server = local_server()
        nodes = [server.stats()] if server is not None else []
        return {"nodes": nodes, "node_count": len(nodes), "totals": stats_totals(nodes), "source": "local"}

    # -- the admin's console and channel browser ------------------------------------------
    def create_admin_link(self, host: Any) -> AdminLink | None:
        """Return the task that lets other processes' admin pages reach this server (None: none needed)."""
        return None

    async def aconsole(self, after: str | None = None, limit: int = 500) -> dict[str, Any]:
        """Keep the debug console watching, and return its events newer than cursor ``after``.

        Returns ``{"cursor": str, "events": [...], "nodes": [{"node", "seq", "dropped",
        "watched"}]}``. The default reads this process's server; ``TransportError`` when this
        process serves no WebSockets (the console then needs a backend that spans processes).
        """
        from ..exceptions import TransportError

        server = local_server()
        if server is None:
            raise TransportError(
                "The debug console reads the server's events: open the admin on the server process, "
                "or use the redis backend."
            )
        server.console_watch(CONSOLE_WATCH_TTL)
        try:
            cursor = int(after or 0)
        except ValueError:
            cursor = 0
        return server.console_read(cursor, limit)

    async def aterminate_user(self, user_id: str, app_id: str | None = None) -> dict[str, Any]:
        """Close every socket of ``user_id`` (on every node where the backend spans several).

        ``app_id`` limits it to the sockets of one app (``PUSHER_APPS``); None: every app.
        Returns ``{"closed": int | None, "scope": "process" | "cluster"}``; ``closed`` is None
        when other nodes do the closing and did not say how many. ``TransportError`` when no
        server can be reached.
        """
        from ..exceptions import TransportError

        server = local_server()
        if server is None:
            raise TransportError("No server runs in this process to close the sockets of.")
        return {"closed": await server.terminate_user(str(user_id), app_id), "scope": "process"}

    # -- channel information for the Pusher HTTP API ---------------------------------------
    async def achannel_counts(self, prefix: str = "") -> dict[str, int]:
        """Return ``{hub channel name: subscriptions}`` of occupied channels whose name starts with
        ``prefix``, on every node where the backend spans several.

        The default counts this process's server (nothing when it serves no WebSockets).
        """
        server = local_server()
        return server.channel_counts(prefix) if server is not None else {}

    async def apresence_members(self, channel: str) -> list[dict[str, Any]]:
        """Return the members (``{"id", "info"}``) of presence ``channel``, cluster-wide where
        the backend spans several nodes. The default asks this process's server."""
        server = local_server()
        return await server.members(channel) if server is not None else []

    async def aclose(self) -> None:
        """Release connections and pools. Called on reset and shutdown."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r}>"
