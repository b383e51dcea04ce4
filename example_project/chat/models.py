"""Chat rooms and their messages."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Room(models.Model):
    name = models.CharField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def channel_name(self) -> str:
        """Return the presence channel of the room (``presence.chat.{id}``)."""
        return f"presence.chat.{self.pk}"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_messages")
    body = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.user}: {self.body[:40]}"

    def to_json(self) -> dict:
        """Return the message as the page and the broadcast show it."""
        return {
            "id": self.pk,
            "room_id": self.room_id,
            "user_id": str(self.user_id),
            "username": self.user.get_username(),
            "message": self.body,
            "timestamp": self.created_at.isoformat(),
        }
