"""Compatibility path: the Pusher consumer is ``server/protocols/pusher/consumer.py``."""

from __future__ import annotations

from .protocols.pusher.consumer import PusherConsumer, SubscriptionRefused

__all__ = ["PusherConsumer", "SubscriptionRefused"]
