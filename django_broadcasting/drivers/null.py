"""``NullDriver``: accepts every message and delivers none (broadcasting switched off)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import BaseDriver

if TYPE_CHECKING:
    from ..messages import Message


class NullDriver(BaseDriver):
    """Discard messages. Validation still happens before a driver is reached, so bad input still fails."""

    name = "null"

    def describe(self) -> str:
        return "the null driver (discarded; no server receives it)"

    async def abroadcast(self, messages: Sequence[Message]) -> None:
        return None
