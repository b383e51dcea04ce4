"""The ``ChatMessageEvent``, broadcast on the room's presence channel after commit."""

from __future__ import annotations

from typing import Any

from django_broadcasting import Event, ShouldBroadcast

from .models import Message


class ChatMessageEvent(ShouldBroadcast, Event):
    """A message was posted in a room. Clients listen for ``ChatMessage``.

    ``after_commit``: the broadcast leaves only once the message row is committed, so a client
    that reacts by fetching the room never misses it, and a rolled-back message is never shown.
    """

    after_commit = True

    def __init__(self, message: Message) -> None:
        self.message = message

    def event_name(self) -> str:
        return "ChatMessage"

    def broadcast_on(self) -> str:
        return self.message.room.channel_name

    def broadcast_with(self) -> Any:
        return self.message.to_json()
