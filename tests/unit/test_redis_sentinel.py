"""Redis Sentinel settings, checks and wiring, without any Redis (no I/O: nothing connects)."""

from __future__ import annotations

import asyncio

import pytest

from django_broadcasting.backends.redis import PUBLISH_SCRIPT, RedisBackend
from django_broadcasting.backends.redis.sentinel import SENTINEL_PUBLISH_SCRIPT, SentinelConfig
from django_broadcasting.checks import check_settings
from django_broadcasting.conf import broadcasting_settings
from django_broadcasting.exceptions import BroadcastingImproperlyConfigured

SENTINELS = "10.0.0.1:26379, 10.0.0.2:26380,[::1]:26381"


def test_settings_and_environment(settings, monkeypatch):
    monkeypatch.setenv("BROADCAST_REDIS_SENTINELS", SENTINELS)
    monkeypatch.setenv("BROADCAST_REDIS_SENTINEL_MASTER", "mymaster")
    settings.BROADCASTING = {}
    assert broadcasting_settings.REDIS_SENTINELS == (
        ("10.0.0.1", 26379),
        ("10.0.0.2", 26380),
        ("::1", 26381),
    )
    assert broadcasting_settings.REDIS_SENTINEL_MASTER == "mymaster"
    settings.BROADCASTING = {"REDIS_SENTINELS": ["a:1", ("b", 2)], "REDIS_SENTINEL_MASTER": "other"}
    assert broadcasting_settings.REDIS_SENTINELS == (("a", 1), ("b", 2))
    assert broadcasting_settings.REDIS_SENTINEL_MASTER == "other"


def test_defaults_mean_standalone(settings):
    settings.BROADCASTING = {}
    assert broadcasting_settings.REDIS_SENTINELS == ()
    assert broadcasting_settings.REDIS_SENTINEL_MASTER is None
    backend = RedisBackend("redis")
    assert backend.sentinel is None and backend._script is PUBLISH_SCRIPT


@pytest.mark.parametrize("value", ["host-without-port", "h:0", "h:70000", "h:port", ":26379", 5, [["h"]]])
def test_bad_sentinel_addresses_name_the_key(settings, value):
    settings.BROADCASTING = {"REDIS_SENTINELS": value}
    with pytest.raises(BroadcastingImproperlyConfigured, match=r"BROADCASTING\['REDIS_SENTINELS'\]"):
        broadcasting_settings.REDIS_SENTINELS


def test_bad_environment_value_names_the_variable(settings, monkeypatch):
    settings.BROADCASTING = {}
    monkeypatch.setenv("BROADCAST_REDIS_SENTINELS", "10.0.0.1:26379,10.0.0.2")
    with pytest.raises(BroadcastingImproperlyConfigured, match="BROADCAST_REDIS_SENTINELS"):
        broadcasting_settings.REDIS_SENTINELS


@pytest.mark.parametrize(
    ("config", "missing"),
    [
        ({"REDIS_SENTINELS": "a:1"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "mymaster"}, "REDIS_SENTINELS"),
    ],
)
def test_half_a_sentinel_setup_is_an_error(settings, config, missing):
    settings.BROADCASTING = config
    [error] = [m for m in check_settings() if m.id == "django_broadcasting.E004"]
    assert f"but {missing} (BROADCAST_{missing}) is not" in error.msg
    with pytest.raises(BroadcastingImproperlyConfigured, match=missing):
        RedisBackend("redis").sentinel  # noqa: B018 - resolving it is the point


def test_a_full_setup_passes_the_checks_without_a_redis_address(settings):
    settings.DEBUG = False
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "redis",
        "REDIS_SENTINELS": SENTINELS,
        "REDIS_SENTINEL_MASTER": "mymaster",
    }
    ids = {m.id for m in check_settings()}
    assert "django_broadcasting.E004" not in ids and "django_broadcasting.W003" not in ids


def test_backend_options_override_the_settings(settings):
    settings.BROADCASTING = {"REDIS_SENTINELS": "a:1", "REDIS_SENTINEL_MASTER": "m"}
    backend = RedisBackend("redis", {"sentinels": ["b:2", "c:3"], "sentinel_master": "n"})
    assert backend.sentinel.config == SentinelConfig((("b", 2), ("c", 3)), "n")
    with pytest.raises(BroadcastingImproperlyConfigured, match=r"OPTIONS\['sentinels'\]"):
        RedisBackend("redis", {"sentinels": "nope"}).sentinel  # noqa: B018


def test_every_connection_is_sentinel_managed_and_keeps_the_url_settings(settings):
    settings.BROADCASTING = {
        "REDIS_SENTINELS": "10.0.0.1:26379",
        "REDIS_SENTINEL_MASTER": "mymaster",
        "REDIS_URL": "redis://:pw@ignored.example:6390/4",
        "REDIS_SOCKET_TIMEOUT": 3,
    }
    backend = RedisBackend("redis")
    assert backend._script is SENTINEL_PUBLISH_SCRIPT
    assert "sentinel 'mymaster' via 10.0.0.1:26379" in backend.describe()
    sync = backend.sentinel.sync_connection()  # not connected: connecting asks the sentinels
    assert type(sync).__name__ == "_PrimaryConnection"
    assert (sync.password, sync.db, sync.socket_timeout) == ("pw", 4, 3)
    assert sync._sock is None

    async def pooled():
        client = backend.client()
        pool = client.connection_pool
        link = backend.new_connection()
        assert pool.service_name == "mymaster" and pool.max_connections == backend.max_connections
        assert pool.connection_class.__name__ == "_AsyncPrimaryConnection"
        assert type(link).__name__ == "_AsyncPrimaryConnection" and link.db == 4 and not link.is_connected
        assert pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs["port"] == 26379

    asyncio.run(pooled())


def test_rediss_url_means_tls_to_the_primary(settings):
    settings.BROADCASTING = {
        "REDIS_SENTINELS": "10.0.0.1:26379",
        "REDIS_SENTINEL_MASTER": "mymaster",
        "REDIS_URL": "rediss://:pw@ignored.example:6390/0",
    }
    conn = RedisBackend("redis").sentinel.sync_connection()
    assert any(c.__name__ == "SSLConnection" for c in type(conn).__mro__)


def test_a_unix_socket_url_cannot_be_used_with_sentinels(settings):
    settings.BROADCASTING = {
        "REDIS_SENTINELS": "10.0.0.1:26379",
        "REDIS_SENTINEL_MASTER": "mymaster",
        "REDIS_URL": "unix:///run/redis.sock",
    }
    with pytest.raises(BroadcastingImproperlyConfigured, match="unix://"):
        RedisBackend("redis").sentinel.sync_connection()


def test_the_sentinel_script_is_the_standard_one_plus_the_primary_check():
    # Everything after the epoch decision is the same script, so ids and streams keep one format.
    tail = PUBLISH_SCRIPT[PUBLISH_SCRIPT.index("local offset") :]
    assert SENTINEL_PUBLISH_SCRIPT.endswith(tail)
    assert "master_replid" in SENTINEL_PUBLISH_SCRIPT
