"""The local backend's transport over a Channels layer: one group per channel, one member per process.

A transport subscribes the *process* (never a socket) to a channel when the hub's first
local subscriber joins, and unsubscribes after the last one leaves. Each broadcast costs
one transport message per subscribed process, which the hub then fans out locally.

``ChannelLayerTransport`` rides on a Channels layer: the process owns one layer channel,
added to one group per broadcast channel.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ...conf import broadcasting_settings
from ...core import groups
from ..base import OnMessage

logger = logging.getLogger("django_broadcasting.server")

#: The message type the hub's layer channel receives.
LAYER_MESSAGE_TYPE = "broadcasting.message"


def group_name(channel: str) -> str:
    """Return the Channels group that carries ``channel`` under ``CHANNELS_PREFIX`` (``core/groups.py``)."""
    return groups.group_name(channel, broadcasting_settings.CHANNELS_PREFIX)


class ChannelLayerTransport:
    """Receive broadcasts through a Channels layer group per channel."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.channel_name: str | None = None
        self._groups: set[str] = set()
        self._tasks: list[asyncio.Task] = []

    @property
    def state(self) -> dict[str, Any]:
        """The layer's part in ``hub.stats()["transport_state"]``."""
        return {"channel": self.channel_name, "channels": len(self._groups)}

    async def start(self, on_message: OnMessage) -> None:
        self.channel_name = await self.layer.new_channel("broadcasting.hub.")
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(on_message)),
            loop.create_task(self._refresh()),
        ]

    async def _read(self, on_message: OnMessage) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self.layer.receive(self.channel_name)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("channel layer receive failed; retrying in %.1fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message.get("type") != LAYER_MESSAGE_TYPE:
                continue
            try:
                on_message(message["message"])
            except Exception:
                logger.exception("dropping a malformed broadcast from the channel layer")

    async def _refresh(self) -> None:
        # Layers expire group membership (channels_redis: group_expiry, 1 day by default);
        # re-adding well before that keeps long-lived subscriptions alive.
        interval = max(60.0, getattr(self.layer, "group_expiry", 86400) / 3)
        while True:
            await asyncio.sleep(interval)
            for group in list(self._groups):
                try:
                    await self.layer.group_add(group, self.channel_name)
                except Exception:
                    logger.exception("could not refresh channel layer group %s", group)

    async def subscribe(self, channel: str) -> None:
        group = group_name(channel)
        await self.layer.group_add(group, self.channel_name)
        self._groups.add(group)

    async def unsubscribe(self, channel: str) -> None:
        group = group_name(channel)
        self._groups.discard(group)
        await self.layer.group_discard(group, self.channel_name)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for group in list(self._groups):
            try:
                await self.layer.group_discard(group, self.channel_name)
            except Exception:
                pass
        self._groups.clear()
