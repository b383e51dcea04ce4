"""Presence announcing: a member joined or left a presence channel of this hub.

Presence itself (who is on a channel, across nodes) is the backend's ``PresenceStore``; this
module tells the channel (``member_added`` / ``member_removed`` through the hub, encoded by each
protocol), the webhooks and the console, and sends the ``member_joined`` / ``member_left``
signals.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import signals
from ..exceptions import BroadcastError
from ..messages import Message

if TYPE_CHECKING:
    from .connection import Connection
    from .hub import Hub

logger = logging.getLogger("django_broadcasting.server")

MEMBER_ADDED = "member_added"
MEMBER_REMOVED = "member_removed"

__all__ = ["MEMBER_ADDED", "MEMBER_REMOVED", "announce", "member_joined", "member_left"]


async def member_joined(hub: Hub, conn: Connection, channel: str, member: dict[str, Any]) -> None:
    """``conn`` joined presence ``channel`` as ``member`` (the id from the authorization)."""
    user_id = str(member.get("id", conn.identity.user_id))
    info = member.get("info", {})
    conn.scope_info.setdefault("presence", {})[channel] = user_id
    if await hub.presence.join(channel, user_id, info, conn.socket_id):
        await announce(hub, channel, MEMBER_ADDED, {"id": user_id, "info": info}, conn.socket_id)
        if signals.member_joined.receivers:
            await signals.asend_fast(
                signals.member_joined,
                sender=type(hub),
                channel=channel,
                user_id=user_id,
                member={"id": user_id, "info": info},
            )


async def member_left(hub: Hub, conn: Connection, channel: str, user_id: str) -> None:
    """``conn``, member ``user_id``, left presence ``channel``."""
    if await hub.presence.leave(channel, user_id, conn.socket_id):
        await announce(hub, channel, MEMBER_REMOVED, {"id": user_id}, conn.socket_id)
        if signals.member_left.receivers:
            await signals.asend_fast(
                signals.member_left,
                sender=type(hub),
                channel=channel,
                user_id=user_id,
                member={"id": user_id},
            )


async def announce(hub: Hub, channel: str, event: str, data: dict[str, Any], socket_id: str | None) -> None:
    """Tell a presence channel that a member joined or left."""
    message = Message(channel, event, data, socket_id=socket_id)
    message.origin = "presence"  # shown by the console as a join or leave, not as a broadcast
    if hub.console is not None:
        hub.console.member(event, channel, data.get("id"))
    if hub.lifecycle is not None and "id" in data:
        hub.lifecycle.member(event, channel, str(data["id"]))
    if hub.presence.cluster_wide:
        try:
            await hub.relay([message])
        except BroadcastError as exc:  # the transport is down: the join itself succeeded
            logger.warning("could not announce %s on %s: %s", event, channel, exc)
            if "id" in data:  # announced again once Redis is back
                hub.presence.unannounced(channel, str(data["id"]))
    else:
        hub.publish_local(message)
