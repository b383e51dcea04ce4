"""Redis Cluster configuration and key placement (no I/O: slots are computed, not asked)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_broadcasting.backends.redis import CLUSTER_PUBLISH_SCRIPT, PUBLISH_SCRIPT, RedisBackend
from django_broadcasting.backends.redis.cluster import NODES_TAG, ClusterKeys, key_slot
from django_broadcasting.conf import broadcasting_settings, reload_broadcasting_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch):
    monkeypatch.delenv("BROADCAST_REDIS_CLUSTER_NODES", raising=False)
    reload_broadcasting_settings()
    yield
    reload_broadcasting_settings()


def test_nodes_from_the_environment(settings, monkeypatch):
    settings.BROADCASTING = {}
    monkeypatch.setenv("BROADCAST_REDIS_CLUSTER_NODES", " 10.0.0.1:7000, redis-b:7001 ,[::1]:7002")
    assert broadcasting_settings.REDIS_CLUSTER_NODES == (("10.0.0.1", 7000), ("redis-b", 7001), ("::1", 7002))


def test_nodes_from_settings_as_a_list(settings):
    settings.BROADCASTING = {"REDIS_CLUSTER_NODES": ["127.0.0.1:7000", "127.0.0.1:7001"]}
    assert broadcasting_settings.REDIS_CLUSTER_NODES == (("127.0.0.1", 7000), ("127.0.0.1", 7001))


def test_default_is_standalone(settings):
    settings.BROADCASTING = {}
    assert broadcasting_settings.REDIS_CLUSTER_NODES == ()
    backend = RedisBackend("redis")
    assert backend.cluster_nodes == () and backend.publish_command == "PUBLISH"
    assert backend._script == PUBLISH_SCRIPT


@pytest.mark.parametrize("raw", ["redis-a", "redis-a:", ":7000", "redis-a:port", "redis-a:70000", "a:0"])
def test_bad_nodes_are_improperly_configured(settings, monkeypatch, raw):
    settings.BROADCASTING = {}
    monkeypatch.setenv("BROADCAST_REDIS_CLUSTER_NODES", raw)
    with pytest.raises(ImproperlyConfigured, match="BROADCAST_REDIS_CLUSTER_NODES"):
        broadcasting_settings.REDIS_CLUSTER_NODES


def test_bad_type_in_settings(settings):
    settings.BROADCASTING = {"REDIS_CLUSTER_NODES": [7000]}
    with pytest.raises(ImproperlyConfigured, match="REDIS_CLUSTER_NODES"):
        broadcasting_settings.REDIS_CLUSTER_NODES


def test_backend_options_override_and_are_validated(settings):
    settings.BROADCASTING = {}
    backend = RedisBackend("redis", {"cluster_nodes": "127.0.0.1:7000"})
    assert backend.cluster_nodes == (("127.0.0.1", 7000),)
    assert backend.publish_command == "SPUBLISH" and backend._script == CLUSTER_PUBLISH_SCRIPT
    assert backend.describe() == "Redis Cluster at 127.0.0.1:7000"
    with pytest.raises(ImproperlyConfigured, match="cluster_nodes"):
        _ = RedisBackend("redis", {"cluster_nodes": ["nope"]}).cluster_nodes


def test_the_cluster_script_publishes_sharded():
    assert "redis.call('SPUBLISH'" in CLUSTER_PUBLISH_SCRIPT and "'PUBLISH'" not in CLUSTER_PUBLISH_SCRIPT
    assert CLUSTER_PUBLISH_SCRIPT.replace("SPUBLISH", "PUBLISH") == PUBLISH_SCRIPT


@pytest.mark.parametrize("channel", ["orders.1", "presence.chat.7", "private-user.5", "a", "x:y;z#1"])
def test_a_channel_lives_in_one_slot(channel):
    keys = ClusterKeys("app:")
    names = [
        keys.pubsub(channel),
        keys.offsets(channel),
        keys.history(channel),
        keys.cache(channel),
        keys.presence_nodes(channel),
        keys.presence_info(channel),
    ]
    assert keys.pubsub(channel) == f"app:{{{channel}}}"
    assert keys.history(channel) == f"app:bc:{{{channel}}}:history"
    assert {key_slot(n) for n in names} == {key_slot(channel)}
    assert len(set(names)) == len(names)


def test_node_keys_share_one_fixed_slot():
    keys = ClusterKeys("app:")
    names = [keys.nodes, keys.node_presence("vm:1"), keys.node_stats("vm:1"), keys.node_stats("other:2")]
    assert all(NODES_TAG in n for n in names)
    assert len({key_slot(n) for n in names}) == 1


def test_channels_spread_over_slots():
    keys = ClusterKeys("")
    slots = {key_slot(keys.pubsub(f"orders.{i}")) for i in range(100)}
    assert len(slots) > 90


@pytest.mark.parametrize("prefix", ["app{1}:", "a}", "{"])
def test_a_prefix_with_braces_is_refused(prefix):
    with pytest.raises(ImproperlyConfigured, match="must not contain"):
        ClusterKeys(prefix)


def test_cluster_and_sentinel_together_are_refused(settings):
    settings.BROADCASTING = {
        "REDIS_CLUSTER_NODES": ["127.0.0.1:7000"],
        "REDIS_SENTINELS": ["127.0.0.1:26379"],
    }
    with pytest.raises(ImproperlyConfigured, match="two different Redis set-ups"):
        _ = RedisBackend("redis").cluster_nodes
