"""The ``UserRegisteredEvent``, dispatched by the sign-up view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_broadcasting import Event, ShouldBroadcast
from django_broadcasting.messages import utc_now_iso

#: The public channel sign-ups are announced on .
REGISTRATIONS_CHANNEL = "user.registered"


@dataclass
class UserRegisteredEvent(ShouldBroadcast, Event):
    """A user signed up. Broadcast as ``UserRegistered`` on ``user.registered``.

    The e-mail is part of the event (listeners may use it) but not of the broadcast: the
    channel is public, so only the id, the name and the time go out.
    """

    user_id: str
    email: str
    name: str

    # Sent once the new user's row is committed.
    after_commit = True

    def event_name(self) -> str:
        return "UserRegistered"

    def broadcast_on(self) -> list[str]:
        return [REGISTRATIONS_CHANNEL]

    def broadcast_as(self) -> str:
        return "UserRegistered"

    def broadcast_with(self) -> Any:
        return {"user_id": self.user_id, "name": self.name, "timestamp": utc_now_iso()}
