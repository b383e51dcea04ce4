"""Recovery of one connection: replay what it missed on a channel, in order, or say it cannot.

The native consumer calls ``hub.recover(conn, channel, last_id)`` right after subscribing a
client that sent ``last_id``. While the history is read (an await, with Redis), live messages
for that connection wait in a ``ReplayBuffer`` the hub fills (``Hub.hold_live``); afterwards the
missed messages go out first, then the buffered ones the history did not already cover
(``ReplayBuffer.merge``, the same de-duplication as the Redis transport's catch-up), then the
protocol's ``recovered`` frame, and only then does the connection rejoin the channel's
subscriber set. When messages are gone (trimmed, expired, another epoch) the client gets the
protocol's ``recovery_failed`` frame (code 4290) instead: never a silent gap. The frames are
encoded by the connection's protocol (``NativeProtocol.recovered``) and documented in
docs/protocol.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..backends.history import Recovery, parse_id
from ..core.codes import ERR_4290_RECOVERY_FAILED

if TYPE_CHECKING:
    from ..messages import Message
    from .connection import Connection
    from .hub import Hub

logger = logging.getLogger("django_broadcasting.server")


def _message_id(message: Message) -> object:
    return message.id


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
    buffer = hub.hold_live(conn, channel)
    try:
        result = await hub.history.recover(channel, since)
    except Exception as exc:  # noqa: BLE001 - e.g. Redis down: tell the client, keep the socket
        logger.warning("recovery on %s failed: %r", channel, exc)
        result = Recovery.failed("history unavailable")
    finally:
        hub.release_live(conn, channel, buffer)
    # From here to the end nothing awaits, so no live message slips between the replay and
    # the socket's return to the subscriber set.
    if conn.closed or channel not in conn.channels:
        await hub.forget_if_empty(channel)  # it left meanwhile, and may have been the last one
        return
    protocol = conn.protocol
    encode = protocol.encode
    if result.ok:
        for message in buffer.merge(result.messages, parse_id(since), _message_id):
            if message.socket_id != conn.socket_id:
                conn.push(encode(message))
        done = protocol.recovered(channel, len(result.messages), result.current_id)
        if done is not None:
            conn.push(done)
    else:
        send_failure(hub, conn, channel, since, result)
        for message in buffer:
            if message.socket_id != conn.socket_id:
                conn.push(encode(message))
    await hub.rejoin(conn, channel)


def send_failure(hub: Hub, conn: Connection, channel: str, since: Any, result: Recovery) -> None:
    """Tell the client its missed messages are gone (the protocol's ``recovery_failed``, code 4290)."""
    hub.count_error(ERR_4290_RECOVERY_FAILED)
    failed = conn.protocol.recovery_failed(channel, result.reason, since, result.current_id)
    if failed is not None:
        conn.push(failed)
