"""Compatibility path: ``HubConsumer`` is in ``server/protocols/consumer.py``, ``BroadcastConsumer`` in
``server/protocols/native/consumer.py``."""

from __future__ import annotations

from .protocols.consumer import HubConsumer
from .protocols.native.consumer import BroadcastConsumer

__all__ = ["BroadcastConsumer", "HubConsumer"]
