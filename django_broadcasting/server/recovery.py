"""Recovery of one connection: replay what it missed on a channel, in order, or say it cannot.

The native consumer calls ``hub.recover(conn, channel, last_id)`` right after subscribing a
client that sent ``last_id``. While the history is read (an await, with Redis), live messages
for that connection wait in a buffer the hub fills (``Hub._recovering``); afterwards the missed
messages go out first, then the buffered ones the history did not already cover, then a
``recovered`` frame, and only then does the connection rejoin the channel's subscriber set.
When messages are gone (trimmed, expired, another epoch) the client gets ``recovery_failed``
(code 4290) instead: never a silent gap. The frames are documented in docs/protocol.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..backends.history import Recovery, parse_id
from ..core.codes import ERR_4290_RECOVERY_FAILED
from .protocols.native.codec import frame

if TYPE_CHECKING:
    from ..messages import Message
    from .connection import Connection
    from .hub import Hub

logger = logging.getLogger("django_broadcasting.server")


async def recover_connection(hub: Hub, conn: Connection, channel: str, since: Any) -> None:
    """Send ``conn`` the messages on ``channel`` after id ``since``, in order."""
    subscribers = hub.subscribers.get(channel)
    if subscribers is None or conn not in subscribers:
        return
    if hub.history is None:
        send_failure(hub, conn, channel, since, Recovery.failed("history is not enabled"))
        return
    if parse_id(since) is None:
        send_failure(hub, conn, channel, since, Recovery.failed("malformed last_id"))
        return
    buffer: list[Message] = []
    entry = (conn, buffer)
    hub._recovering.setdefault(channel, []).append(entry)
    subscribers.discard(conn)
    try:
        result = await hub.history.recover(channel, since)
    except Exception as exc:  # noqa: BLE001 - e.g. Redis down: tell the client, keep the socket
        logger.warning("recovery on %s failed: %r", channel, exc)
        result = Recovery.failed("history unavailable")
    finally:
        waiting = hub._recovering.get(channel, [])
        if entry in waiting:
            waiting.remove(entry)
        if not waiting:
            hub._recovering.pop(channel, None)
    # From here to the end nothing awaits, so no live message slips between the replay and
    # the socket's return to the subscriber set.
    if conn.closed or channel not in conn.channels:
        if not hub.subscribers.get(channel, True):  # it left meanwhile, and was the last one
            del hub.subscribers[channel]
            await hub._sync_transport(channel)
        return
    encode = conn.protocol.encode
    if result.ok:
        last = parse_id(since)
        for message in result.messages:
            if message.socket_id != conn.socket_id:
                conn.push(encode(message))
        if result.messages:
            last = parse_id(result.messages[-1].id)
        for message in buffer:
            position = parse_id(message.id)
            covered = (
                position is not None
                and last is not None
                and position[0] == last[0]
                and position[1] <= last[1]
            )
            if not covered and message.socket_id != conn.socket_id:
                conn.push(encode(message))
        conn.push(
            frame(
                "recovered",
                {
                    "channel": channel,
                    "count": len(result.messages),
                    "last_id": result.current_id,
                },
                channel,
            )
        )
    else:
        send_failure(hub, conn, channel, since, result)
        for message in buffer:
            if message.socket_id != conn.socket_id:
                conn.push(encode(message))
    resync = channel not in hub.subscribers
    hub.subscribers.setdefault(channel, set()).add(conn)
    if resync:
        await hub._sync_transport(channel)


def send_failure(hub: Hub, conn: Connection, channel: str, since: Any, result: Recovery) -> None:
    """Tell the client its missed messages are gone (a ``recovery_failed`` frame, code 4290)."""
    hub.count_error(ERR_4290_RECOVERY_FAILED)
    conn.push(
        frame(
            "recovery_failed",
            {
                "code": ERR_4290_RECOVERY_FAILED,
                "message": f"Missed messages could not be recovered: {result.reason}.",
                "last_id": since if isinstance(since, str) else None,
                "current_id": result.current_id,
            },
            channel,
        )
    )
