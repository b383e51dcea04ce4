"""The redis driver without server processes: settings, errors, loops, one EVALSHA per message."""

from __future__ import annotations

from django_broadcasting.drivers.redis import RedisDriver, RedisKeys


def test_keys_live_under_the_prefix():
    keys = RedisKeys("app1:")
    assert keys.pubsub("orders.1") == "app1:orders.1"
    assert keys.history("orders.1").startswith("app1:bc:") and keys.nodes.startswith("app1:bc:")


def test_connection_settings(settings):
    settings.BROADCASTING = {
        "REDIS_HOST": "redis.internal",
        "REDIS_PORT": 6380,
        "REDIS_PASSWORD": "pw",
        "REDIS_DATABASE": 3,
        "REDIS_SOCKET_TIMEOUT": 7,
    }
    kwargs = RedisDriver("redis").connection_kwargs()
    assert (kwargs["host"], kwargs["port"], kwargs["password"], kwargs["db"]) == (
        "redis.internal",
        6380,
        "pw",
        3,
    )
    assert kwargs["socket_timeout"] == 7


def test_url_wins_and_rediss_means_tls(settings):
    settings.BROADCASTING = {"REDIS_URL": "rediss://:secret@cache.example:6390/2", "REDIS_HOST": "ignored"}
    kwargs = RedisDriver("redis").connection_kwargs()
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "cache.example",
        6390,
        2,
        "secret",
    )
    assert "SSL" in kwargs["connection_class"].__name__
