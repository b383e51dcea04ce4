"""The per-process hub: lifecycle and fan-out.

One hub serves every WebSocket of a server process. Its subscription registry
(``subscriptions.py``) keeps ``channel -> connections`` and subscribes the *process* to a
channel in the transport when the first local socket joins and unsubscribes after the last
one leaves; the hub writes each broadcast to its local subscribers: encoded once per protocol, pushed to each socket without a task, a
channel-layer message or a consumer dispatch per delivery (see ``connection.py``).

Publishing from inside the server process with the in-memory default calls ``publish``
directly; from other processes, messages arrive through the transport or the signed
HTTP trigger.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..backends.base import Backend, HubTransport
from ..backends.cache import ChannelCache, cacheable
from ..backends.history import HistoryStore, ReplayBuffer
from ..backends.presence import LocalPresence, PresenceStore
from ..conf import broadcasting_settings
from ..core.codes import WS_1012_SERVICE_RESTART
from ..core.ids import new_socket_id
from ..core.serving import install_hub, register_local_server
from ..exceptions import InvalidMessage, OverCapacity
from ..messages import APP_NAMESPACE, Message
from ..stats.series import SeriesRing
from ..webhooks.lifecycle import Lifecycle
from .app_stats import app_stats, count_app_message
from .connection import Frame
from .console import ConsoleRecorder
from .hub_stats import hub_stats, record_samples, sample
from .presence_events import MEMBER_ADDED, MEMBER_REMOVED, announce, member_joined, member_left  # noqa: F401
from .shutdown import install_twisted_shutdown_hook
from .subscriptions import Subscriptions
from .sweep import sweep

if TYPE_CHECKING:
    from .connection import Connection

logger = logging.getLogger("django_broadcasting.server")


def _node_id() -> str:
    return broadcasting_settings.NODE_ID or f"{socket.gethostname()}:{os.getpid()}"


class Hub:
    """Local subscribers of one server process, and the fan-out to them."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        # The subscription registry; fan-out reads its dicts directly (never rebound).
        self.registry = Subscriptions()
        self.subscribers: dict[str, set[Connection]] = self.registry.subscribers
        self.connections: dict[str, Connection] = {}
        self.addresses: dict[str, int] = {}  # open connections per client address
        self.presence: PresenceStore = LocalPresence()
        self.backend: Backend | None = None  # the default backend, once started
        self.transport: HubTransport | None = None
        self.history: HistoryStore | None = None  # None when history is off or unavailable
        self.lifecycle: Lifecycle | None = None  # webhooks and lifecycle signals, once started
        self.cache: ChannelCache | None = None  # cache channels' last events
        self._cache_writer: ChannelCache | None = None  # the cache, when this hub writes it
        # Connections catching up on a channel: live messages wait in their buffer meanwhile.
        self._recovering: dict[str, list[tuple[Connection, list[Message]]]] = self.registry.recovering
        self.node_id = _node_id()
        self.serving = False
        self.started_at = time.time()
        self.messages_in = 0  # broadcasts this process received (one per channel message)
        self.deliveries = 0  # frames written to subscribers by fan-out
        self.frames_in = 0  # client frames received
        self.connections_total = 0
        self.errors: dict[int, int] = {}  # error frames and close codes sent, by code
        # Per Pusher app: open connections, and [messages_in, deliveries] of apps other than the
        # default one (whose figures are the totals minus the others').
        self.app_connections: dict[str, int] = {}
        self.app_messages: dict[str, list[int]] = {}
        self._start_lock: asyncio.Lock | None = None
        self._started = False
        self._tasks: list[asyncio.Task] = []
        self._sockets = 0
        # The admin: figures over time (charts), and the debug console's recorder, which is
        # ``self.console`` only while a console page watches (None costs fan-out one check).
        self.series = SeriesRing()
        self.recorder = ConsoleRecorder(self.node_id)
        self.console: ConsoleRecorder | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Bind to the running loop and start the transport (idempotent)."""
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            from ..drivers import get_driver

            self.loop = asyncio.get_running_loop()
            self.serving = True
            register_local_server(self)
            backend = get_driver()
            transport = backend.create_transport()
            if transport is not None:
                await transport.start(self._on_transport_message)
            self.backend, self.transport = backend, transport
            self.presence = backend.create_presence(self)
            await self.presence.start()
            self.history = backend.create_history(transport)
            self.lifecycle = Lifecycle(self, backend)
            await self.lifecycle.start()
            self.cache = backend.create_cache(transport)
            self._cache_writer = self.cache if self.cache.records else None
            self._tasks.append(self.loop.create_task(sweep(self)))
            self._tasks.append(self.loop.create_task(record_samples(self)))
            link = backend.create_admin_link(self)
            if link is not None:
                self._tasks.append(self.loop.create_task(link.run()))
                await link.wait_ready(2.0)
            install_twisted_shutdown_hook(self)  # daphne: 1012 to every socket first
            self._started = True
            logger.info("hub %s started (transport: %s)", self.node_id, type(transport).__name__)

    async def stop(self) -> None:
        """Stop background work and the transport (used by tests and shutdown)."""
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self.transport is not None:
            await self.transport.stop()
        await self.presence.aclose()
        if self.lifecycle is not None:  # after presence: its last member events go out too
            lifecycle, self.lifecycle = self.lifecycle, None
            await lifecycle.aclose()
        self._started = False

    async def shutdown(self, code: int = WS_1012_SERVICE_RESTART) -> None:
        """Close every socket with ``code`` (1012 by default, so clients reconnect)."""
        closing = [conn.close(code) for conn in list(self.connections.values())]
        if closing:
            await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=5)

    def new_socket_id(self, app: Any = None) -> str:
        """Return a process-unique socket id of the Pusher form ``123.456``.

        With several Pusher apps configured, the part before the dot ends with the position of
        ``app`` in two digits, so ``/broadcasting/auth`` in any process knows which app's secret
        signs for the socket (``pusher_apps.app_for_socket_id``).
        """
        self._sockets += 1
        position = None
        if app is not None:
            from ..pusher_apps import get_apps

            if get_apps().several:
                position = app.index
        return new_socket_id(self._sockets, position)  # the form: ``core/ids.py``

    # -- connections and subscriptions ---------------------------------------------------
    def add_connection(self, conn: Connection) -> None:
        self.connections[conn.socket_id] = conn
        self.connections_total += 1
        app_id = conn.app.id if conn.app is not None else ""
        self.app_connections[app_id] = self.app_connections.get(app_id, 0) + 1
        address = conn.address
        self.addresses[address] = self.addresses.get(address, 0) + 1

    async def remove_connection(self, conn: Connection) -> None:
        """Forget ``conn`` and every subscription it held (presence leaves included)."""
        if self.connections.pop(conn.socket_id, None) is None:
            return
        app_id = conn.app.id if conn.app is not None else ""
        left = self.app_connections.get(app_id, 0) - 1
        if left > 0:
            self.app_connections[app_id] = left
        else:
            self.app_connections.pop(app_id, None)
        count = self.addresses.get(conn.address, 0) - 1
        if count > 0:
            self.addresses[conn.address] = count
        else:
            self.addresses.pop(conn.address, None)
        conn.closed = True
        for channel in list(conn.channels):
            await self.unsubscribe(conn, channel)

    async def subscribe(self, conn: Connection, channel: str, member: dict[str, Any] | None = None) -> None:
        """Add ``conn`` to ``channel``'s local subscribers; join presence when ``member`` is given.

        Raise ``OverCapacity`` when the process holds ``MAX_CHANNELS`` channels already, or the
        member's info is larger than ``MAX_PRESENCE_INFO_SIZE``.
        """
        if member is not None and broadcasting_settings.MAX_PRESENCE_INFO_SIZE:
            size = len(json.dumps(member.get("info", {}), default=str))
            if size > broadcasting_settings.MAX_PRESENCE_INFO_SIZE:
                raise OverCapacity(
                    f"Presence info is {size} bytes; the limit is {broadcasting_settings.MAX_PRESENCE_INFO_SIZE}."
                )
        self.registry.add(conn, channel)
        if self.console is not None:
            self.console.subscription("subscribe", channel, conn.socket_id, conn.identity.user_id)
        await self.sync_transport(channel)
        # The member id comes from the authorization (a Pusher client's signed channel_data
        # names it even on a socket that carries no identity of its own).
        if member is not None and (member.get("id") is not None or conn.identity.user_id is not None):
            await member_joined(self, conn, channel, member)

    async def unsubscribe(self, conn: Connection, channel: str) -> bool:
        """Remove ``conn`` from ``channel``; return False when it was not subscribed."""
        if not self.registry.discard(conn, channel):
            return False
        if self.console is not None:
            self.console.subscription("unsubscribe", channel, conn.socket_id, conn.identity.user_id)
        user_id = conn.scope_info.get("presence", {}).pop(channel, None)
        if user_id is not None:
            await member_left(self, conn, channel, user_id)
        await self.sync_transport(channel)
        return True

    async def sync_transport(self, channel: str) -> None:
        """Bring the transport in line with ``channel``'s local subscribers (``subscriptions.py``)."""
        if self.lifecycle is not None:  # occupied/vacated, settled in the background
            self.lifecycle.touch(channel)
        await self.registry.sync(channel, self.transport)

    @property
    def _subscribed(self) -> set[str]:
        """Channels this process holds in the transport."""
        return self.registry.subscribed

    @property
    def _locks(self) -> dict[str, asyncio.Lock]:
        """Per-channel locks of transport syncs in progress."""
        return self.registry.locks

    async def members(self, channel: str) -> list[dict[str, Any]]:
        return await self.presence.members(channel)

    # -- publishing ----------------------------------------------------------------------
    async def relay(self, messages: Sequence[Message]) -> None:
        """Publish messages that originate in this server (whispers, presence events)."""
        if self.lifecycle is not None and messages and messages[0].origin == "whisper":
            await self.lifecycle.client_events(messages)
        if self.transport is not None and self.backend is not None:
            await self.backend.apublish(messages)
        else:
            for message in messages:
                self._local(message)

    async def announce(self, channel: str, event: str, data: dict[str, Any], socket_id: str | None) -> None:
        """Tell a presence channel that a member joined or left (see ``presence_events.py``)."""
        await announce(self, channel, event, data, socket_id)

    def publish(self, messages: Iterable[Message]) -> None:
        """Deliver ``messages`` to local subscribers; safe to call from any thread."""
        messages = list(messages)
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            for message in messages:
                self._local(message)
        else:
            loop.call_soon_threadsafe(lambda: [self._local(m) for m in messages])

    def publish_local(self, message: Message) -> int:
        """In-process publishing: number the message first when this hub keeps the history."""
        history = self.history
        if history is not None and history.assigns_ids and message.id is None:
            message = history.append(message)
        return self.deliver(message)

    _local = publish_local

    def _on_transport_message(self, payload: dict[str, Any]) -> None:
        # Published (and validated) by a publisher of this project: rebuilt without a second
        # validation or a decode of the payload.
        try:
            message = Message.from_publisher(payload)
        except (KeyError, TypeError) as exc:
            raise InvalidMessage(f"Malformed transport message: {exc!r}") from None
        self.deliver(message)

    def deliver(self, message: Message) -> int:
        """Write ``message`` to every local subscriber of its channel; return the count."""
        self.messages_in += 1
        channel = message.channel
        writer = self._cache_writer
        if writer is not None and cacheable(message):
            writer.record(message)
        if self._recovering:  # one lookup per message, and only while someone catches up
            for _, buffer in self._recovering.get(channel, ()):
                buffer.append(message)
        subscribers = self.subscribers.get(channel)
        # Another app's channel (one prefix test per broadcast): counted for its stats.
        figures = self._app_figures(channel) if channel.startswith(APP_NAMESPACE) else None
        if not subscribers:
            if self.console is not None:
                self._console_broadcast(message, 0)
            return 0
        exclude = message.socket_id
        sent = 0
        if len(subscribers) == 1:
            # A channel with one socket (a user's own, a small room's): no copy and no loop.
            (conn,) = subscribers
            if exclude is None or conn.socket_id != exclude:
                conn.push_frame(Frame(conn.protocol.encode(message)))
                sent = 1
        else:
            # One Frame per protocol per broadcast; nothing is allocated per recipient. Subscribers
            # almost always share one protocol: a dict of frames is made only when a second shows.
            frames: dict[Any, Frame] | None = None
            last_protocol: Any = None
            frame: Any = None
            # Copy: a push may close a slow socket, which edits the set.
            for conn in tuple(subscribers):
                if exclude is not None and conn.socket_id == exclude:
                    continue
                protocol = conn.protocol
                if protocol is not last_protocol:
                    if frame is None:
                        frame = Frame(protocol.encode(message))
                    else:
                        if frames is None:
                            frames = {last_protocol: frame}
                        frame = frames.get(protocol)
                        if frame is None:
                            frame = frames[protocol] = Frame(protocol.encode(message))
                    last_protocol = protocol
                conn.push_frame(frame)
                sent += 1
        self.deliveries += sent
        if figures is not None:
            figures[1] += sent
        if self.console is not None:
            self._console_broadcast(message, sent)
        return sent

    def _app_figures(self, channel: str) -> list[int] | None:
        """Count a broadcast on another app's channel; return that app's [messages_in, deliveries]."""
        return count_app_message(self, channel)

    def app_stats(self) -> dict[str, dict[str, int]]:
        """Figures per Pusher app: connections, channels, subscriptions, messages_in, deliveries."""
        return app_stats(self)

    # -- the admin: debug console, figures over time, closing a user's sockets -----------
    def _console_broadcast(self, message: Message, sent: int) -> None:
        console = self.console
        if console is None:
            return
        if not console.watched:  # the last page closed: back to costing nothing
            self.console = None
            return
        if message.origin != "presence":  # joins and leaves are recorded by ``announce``
            console.broadcast(message, sent)

    def console_watch(self, ttl: float) -> None:
        """Record console events for the next ``ttl`` seconds (a console page is open)."""
        self.recorder.watch(ttl)
        self.console = self.recorder

    def console_read(self, after: int = 0, limit: int = 500) -> dict[str, Any]:
        """This process's console events newer than ``after``: ``{"cursor", "events", "nodes"}``."""
        events = self.recorder.read(after, limit)
        cursor = events[-1]["seq"] if events else max(after if after <= self.recorder.seq else 0, 0)
        return {"cursor": str(cursor), "events": events, "nodes": [self.recorder.state()]}

    async def terminate_user(self, user_id: str, app_id: str | None = None) -> int:
        """Close this process's sockets of ``user_id`` (of app ``app_id``, or of every app), as
        the HTTP API's terminate_connections does."""
        from .protocols.pusher.connection import terminate_user_connections

        return await terminate_user_connections(user_id, app_id)

    def channel_counts(self, prefix: str = "") -> dict[str, int]:
        """Local subscriptions per occupied channel whose hub name starts with ``prefix``."""
        return self.registry.channel_counts(prefix)

    def sample(self) -> list[float]:
        """This instant's sample for the charts (see ``hub_stats.py``)."""
        return sample(self)

    def series_export(self) -> dict[str, Any]:
        """The last 15 minutes of samples, and this instant's."""
        return self.series.export(self.sample())

    # -- recovery (``recovery.py`` drives it; the hub holds live messages meanwhile) ------------
    def hold_live(self, conn: Connection, channel: str) -> ReplayBuffer:
        """Take ``conn`` out of ``channel``'s fan-out; live messages for it wait in the returned buffer."""
        return self.registry.hold_live(conn, channel)

    def release_live(self, conn: Connection, channel: str, buffer: ReplayBuffer) -> None:
        """Stop holding live messages for ``conn`` (its buffer is handed back by ``hold_live``)."""
        self.registry.release_live(conn, channel, buffer)

    async def rejoin(self, conn: Connection, channel: str) -> None:
        """Put ``conn`` back into ``channel``'s fan-out after its replay."""
        if self.registry.rejoin(conn, channel):
            await self.sync_transport(channel)

    async def forget_if_empty(self, channel: str) -> None:
        """Drop ``channel`` when its last subscriber left during a replay."""
        if self.registry.forget_if_empty(channel):
            await self.sync_transport(channel)

    async def recover(self, conn: Connection, channel: str, since: Any) -> None:
        """Send ``conn`` the messages on ``channel`` after id ``since`` (see ``recovery.py``)."""
        from .recovery import recover_connection

        await recover_connection(self, conn, channel, since)

    async def send_cached(self, conn: Connection, channel: str) -> None:
        """Send ``conn`` the cached event of a cache channel, or a cache miss (see ``cache.py``)."""
        from .cache import send_cached

        await send_cached(self, conn, channel)

    def count_error(self, code: int) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    # -- stats ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Return this process's figures (read by the stats API, metrics and commands; ``hub_stats.py``)."""
        return hub_stats(self)


_hub: Hub | None = None
_hub_lock = threading.Lock()


def get_hub() -> Hub:
    """Return this process's hub, creating it on first use."""
    global _hub
    if _hub is None:
        with _hub_lock:
            if _hub is None:
                _hub = Hub()
    return _hub


def reset_hub() -> None:
    """Drop the hub (tests; settings changes). Sockets of a running server are not touched."""
    global _hub
    with _hub_lock:
        if _hub is not None:
            register_local_server(None)
        _hub = None


def mark_serving() -> None:
    """Record that this process serves WebSockets, so local publishes reach the hub directly.

    Called by the server's startup (``LifespanApp``: lifespan startup or its first scope) and
    by a consumer's first connection, never as a side effect of an import.
    """
    hub = get_hub()
    hub.serving = True
    register_local_server(hub)


# http/ and the stats readers reach the hub through core.serving, without importing server/.
install_hub(get_hub)
