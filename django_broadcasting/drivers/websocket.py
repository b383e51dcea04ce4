"""The ``websocket`` driver: broadcasts through the Channels layer to the server hubs.

- Redis-backed layers (``RedisChannelLayer``, ``RedisPubSubChannelLayer``): one
  ``group_send`` per channel; each server process that has subscribers on the channel is a
  single member of the group, so the cost is O(server processes), not O(sockets).
- The in-memory layer: it cannot leave its process. Inside the server process the message
  goes straight to the hub; anywhere else (a WSGI worker, a management command, a task
  worker) it is posted to the server's signed HTTP trigger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

from ..exceptions import BroadcastingImproperlyConfigured, TransportError
from ..messages import Message
from ..server.transport import LAYER_MESSAGE_TYPE, ChannelLayerTransport, group_name
from .base import BaseDriver


class WebSocketDriver(BaseDriver):
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

    async def abroadcast(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        layer = self.layer()
        if isinstance(layer, InMemoryChannelLayer):
            from ..server.hub import get_hub

            hub = get_hub()
            if hub.serving:
                hub.publish(messages)
            else:
                from ..http.trigger import apost

                await apost(messages)
            return
        try:
            for message in messages:
                await layer.group_send(
                    group_name(message.channel),
                    {"type": LAYER_MESSAGE_TYPE, "message": message.to_transport()},
                )
        except Exception as exc:  # redis down, timeouts: a clear error, never a hang
            raise TransportError(f"Channel layer {self.layer_alias!r} failed: {exc}") from exc

    def create_transport(self) -> ChannelLayerTransport | None:
        layer = self.layer()
        if isinstance(layer, InMemoryChannelLayer):
            return None
        return ChannelLayerTransport(layer)
