"""Older import path of the ``redis`` driver: ``django_broadcasting.backends.redis.RedisBackend``."""

from __future__ import annotations

from ..backends.redis import PUBLISH_SCRIPT, RedisBackend, RedisDriver, RedisKeys

__all__ = ["PUBLISH_SCRIPT", "RedisBackend", "RedisDriver", "RedisKeys"]
