"""``REDIS_ENABLED`` (BROADCAST_REDIS_ENABLED) switches the default websocket driver to Redis."""

from __future__ import annotations

from django_broadcasting.drivers import drivers, get_driver


def test_redis_enabled_makes_redis_the_default(settings):
    settings.BROADCASTING = {"REDIS_ENABLED": True}
    try:
        assert drivers.default_alias() == "redis"
        assert get_driver().driver_name() == "redis"
    finally:
        drivers.reset()


def test_explicit_driver_is_kept(settings):
    settings.BROADCASTING = {"REDIS_ENABLED": True, "DEFAULT_DRIVER": "log"}
    assert drivers.default_alias() == "log"


def test_default_is_websocket(settings):
    settings.BROADCASTING = {}
    assert drivers.default_alias() == "websocket"
