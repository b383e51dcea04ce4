"""Presence: who is on a presence channel, one member per user however many sockets.

``LocalPresence`` keeps members in this process's memory (the embedded default). A user
joins on their first socket and leaves after their last one; ``join``/``leave`` say
whether that happened so the hub can announce ``member_added``/``member_removed``.
The Redis scale-out swaps in a cluster-wide store with the same async interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Member:
    """A presence member: the user's id, public info, and this process's sockets for them."""

    user_id: str
    info: dict[str, Any]
    sockets: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.user_id, "info": self.info}


class PresenceStore(Protocol):
    """What the hub needs from a backend's presence store."""

    #: True when members are shared by every server process (announcements go through the backend).
    cluster_wide: bool

    async def start(self) -> None: ...
    async def aclose(self) -> None: ...
    def unannounced(self, channel: str, user_id: str) -> None:
        """A member event of ``user_id`` could not be published: settle it later (cluster stores)."""
        ...

    async def join(self, channel: str, user_id: str, info: dict[str, Any], socket_id: str) -> bool: ...
    async def leave(self, channel: str, user_id: str, socket_id: str) -> bool: ...
    async def members(self, channel: str) -> list[dict[str, Any]]: ...
    def count(self) -> int: ...
    def snapshot(self) -> dict[str, list[dict[str, Any]]]: ...


class LocalPresence:
    """Presence members of this process, by channel and user id."""

    cluster_wide = False

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, Member]] = {}

    async def start(self) -> None:
        """Nothing to start: members live in this process."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def unannounced(self, channel: str, user_id: str) -> None:
        """Nothing to settle: local member events cannot fail."""

    async def join(self, channel: str, user_id: str, info: dict[str, Any], socket_id: str) -> bool:
        """Add ``socket_id`` for ``user_id``; return True when the user was not a member yet."""
        members = self._channels.setdefault(channel, {})
        member = members.get(user_id)
        first = member is None
        if first:
            member = members[user_id] = Member(user_id, info)
        else:
            member.info = info  # the newest socket's info wins (e.g. a renamed user)
        member.sockets.add(socket_id)
        return first

    async def leave(self, channel: str, user_id: str, socket_id: str) -> bool:
        """Remove ``socket_id``; return True when it was the user's last socket on the channel."""
        members = self._channels.get(channel)
        if not members or user_id not in members:
            return False
        member = members[user_id]
        member.sockets.discard(socket_id)
        if member.sockets:
            return False
        del members[user_id]
        if not members:
            del self._channels[channel]
        return True

    async def members(self, channel: str) -> list[dict[str, Any]]:
        return [m.as_dict() for m in self._channels.get(channel, {}).values()]

    def count(self) -> int:
        return sum(len(m) for m in self._channels.values())

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {name: [m.as_dict() for m in members.values()] for name, members in self._channels.items()}

    def clear(self) -> None:
        self._channels.clear()
