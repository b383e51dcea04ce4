"""``MemoryDriver``: keeps every message in a module-level ``outbox``, like ``django.core.mail.outbox``.

Tests read ``django_broadcasting.drivers.memory.outbox`` (a list of ``Message``)::

    from django_broadcasting.drivers import memory

    broadcast_to_channel("general", "announcement", {"text": "hi"})   # with DEFAULT_DRIVER "memory"
    assert memory.outbox[0].channel == "general"

The outbox is emptied in place by ``reset_outbox()`` (the pytest plugin does it before each
test), so ``from ...memory import outbox`` keeps seeing the live list.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import BaseDriver

if TYPE_CHECKING:
    from ..messages import Message

__all__ = ["MemoryDriver", "outbox", "reset_outbox"]

#: Every message published through any ``MemoryDriver``, oldest first.
outbox: list[Message] = []
_lock = threading.Lock()


def reset_outbox() -> None:
    """Empty the outbox in place."""
    with _lock:
        outbox.clear()


class MemoryDriver(BaseDriver):
    """Append messages to ``outbox``; ``self.messages`` holds this instance's share."""

    name = "memory"

    def describe(self) -> str:
        return "the memory driver (kept in this process; no server receives it)"

    def __init__(self, alias: str, options: dict | None = None) -> None:
        super().__init__(alias, options)
        self.messages: list[Message] = []

    async def abroadcast(self, messages: Sequence[Message]) -> None:
        with _lock:
            outbox.extend(messages)
            self.messages.extend(messages)
