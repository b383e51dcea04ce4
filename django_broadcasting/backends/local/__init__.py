"""The ``local`` backend (driver alias ``websocket``): this process's hub, a Channels layer, or the HTTP trigger.

Publishing, by where the publisher runs:

- **Inside the server process** (a view under daphne/uvicorn/runserver, a whisper): the
  message goes straight to the hub registered with ``register_local_server()``.
- **A Redis-backed Channels layer** (``RedisChannelLayer``, ``RedisPubSubChannelLayer``):
  one ``group_send`` per channel; each server process that has subscribers on the channel
  is a single member of the group, so the cost is O(server processes), not O(sockets).
- **The in-memory layer, from another process** (a WSGI worker, a management command, a task
  worker): it cannot leave its process, so the message is posted to the server's signed
  HTTP trigger (``trigger.py``), and the receipt names the server that accepted it.

Subscribe side: ``ChannelLayerTransport`` for a cross-process layer (``layer.py``); presence
and history in this process's memory (the ``Backend`` defaults).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from channels.layers import InMemoryChannelLayer, get_channel_layer

from ...discovery import describe_server, resolve_target, server_identity
from ...encryption import seal_messages
from ...exceptions import BroadcastingImproperlyConfigured, TransportError
from ...messages import Message
from ..base import Backend, PublishReceipt, local_server
from .layer import LAYER_MESSAGE_TYPE, ChannelLayerTransport, group_name
from .trigger import asend, send

__all__ = ["ChannelLayerTransport", "LocalBackend", "WebSocketDriver", "group_name"]


class LocalBackend(Backend):
    """Publish through the Channels layer named by OPTIONS ``layer`` (default ``default``)."""

    name = "websocket"

    @property
    def layer_alias(self) -> str:
        return self.options.get("layer", "default")

    def layer(self) -> Any:
        layer = get_channel_layer(self.layer_alias)
        if layer is None:
            raise BroadcastingImproperlyConfigured(
                f"The websocket broadcast driver needs CHANNEL_LAYERS[{self.layer_alias!r}]."
            )
        return layer

    def is_local(self) -> bool:
        """True when the layer cannot carry messages between processes."""
        return isinstance(self.layer(), InMemoryChannelLayer)

    def describe(self) -> str:
        layer = self.layer()
        if isinstance(layer, InMemoryChannelLayer):
            if local_server() is not None:
                return f"this process's own hub ({describe_server(server_identity())})"
            return f"the server at {resolve_target().address}"
        hosts = [_address(host) for host in getattr(layer, "hosts", None) or []]
        where = f" at {', '.join(hosts)}" if hosts else ""
        return f"the channel layer {self.layer_alias!r} ({type(layer).__name__}{where})"

    # -- publish side ----------------------------------------------------------------------
    async def apublish(self, messages: Sequence[Message]) -> PublishReceipt:
        if not messages:
            return PublishReceipt(self.describe(), 0)
        messages = seal_messages(messages)  # a caller of the backend itself gets them sealed too
        layer = self.layer()
        if isinstance(layer, InMemoryChannelLayer):
            server = local_server()
            if server is not None:
                server.publish(messages)
                return PublishReceipt(self.describe(), len(messages), server=server_identity())
            return _trigger_receipt(*await asend(messages), len(messages))
        try:
            for message in messages:
                await layer.group_send(
                    group_name(message.channel),
                    {"type": LAYER_MESSAGE_TYPE, "message": message.to_transport()},
                )
        except Exception as exc:  # redis down, timeouts: a clear error, never a hang
            raise TransportError(f"Channel layer {self.layer_alias!r} failed: {exc}") from exc
        return PublishReceipt(self.describe(), len(messages))

    def publish(self, messages: Sequence[Message]) -> PublishReceipt:
        # The in-memory layer from another process is a blocking HTTP request: make it here,
        # without an event loop. Everything else is async I/O through the one implementation.
        if messages and self.is_local() and local_server() is None:
            return _trigger_receipt(*send(seal_messages(messages)), len(messages))
        return super().publish(messages)

    # -- subscribe side --------------------------------------------------------------------
    def create_transport(self) -> ChannelLayerTransport | None:
        layer = self.layer()
        if isinstance(layer, InMemoryChannelLayer):
            return None
        return ChannelLayerTransport(layer)


def _address(host: object) -> str:
    """A channels-redis host entry as ``host:port``, never with its password."""
    address = host.get("address", "?") if isinstance(host, dict) else host
    if isinstance(address, (tuple, list)):
        return ":".join(str(part) for part in address)
    parts = urlsplit(str(address))
    if parts.scheme and parts.hostname:
        return f"{parts.hostname}:{parts.port or 6379}{parts.path if parts.path not in ('', '/') else ''}"
    return str(address)


def _trigger_receipt(answer: Any, accepted_by: str, count: int) -> PublishReceipt:
    server = answer.get("server") if isinstance(answer, dict) else None
    return PublishReceipt(accepted_by, count, server=server if isinstance(server, dict) else {})


#: The name this backend had before backends owned both sides; settings may still use it.
WebSocketDriver = LocalBackend
