"""Settings: BROADCASTING dict, environment fall-backs, validation errors naming the key, reset on change."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_broadcasting.conf import (
    DEFAULT_DRIVERS,
    OPTIONS,
    broadcasting_settings,
    on_reload,
    reload_broadcasting_settings,
)


@pytest.fixture(autouse=True)
def _fresh_settings():
    reload_broadcasting_settings()
    yield
    reload_broadcasting_settings()


def test_defaults_when_nothing_is_configured(settings, monkeypatch):
    monkeypatch.delenv("BROADCAST_DRIVER", raising=False)
    monkeypatch.delenv("BROADCAST_WEBSOCKET_PORT", raising=False)
    settings.BROADCASTING = {}
    assert broadcasting_settings.DEFAULT_DRIVER == "websocket"
    assert broadcasting_settings.WEBSOCKET_PORT == 8080
    assert broadcasting_settings.REDIS_ENABLED is False


def test_settings_dict_wins_over_environment(settings, monkeypatch):
    monkeypatch.setenv("BROADCAST_DRIVER", "log")
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    assert broadcasting_settings.DEFAULT_DRIVER == "memory"


@pytest.mark.parametrize(
    ("env", "raw", "key", "expected"),
    [
        ("BROADCAST_DRIVER", "log", "DEFAULT_DRIVER", "log"),
        ("BROADCAST_WEBSOCKET_ENABLED", "false", "WEBSOCKET_ENABLED", False),
        ("BROADCAST_WEBSOCKET_PORT", "9001", "WEBSOCKET_PORT", 9001),
        ("BROADCAST_REDIS_ENABLED", "true", "REDIS_ENABLED", True),
        ("BROADCAST_REDIS_HOST", "redis.internal", "REDIS_HOST", "redis.internal"),
        ("BROADCAST_REDIS_PORT", "6380", "REDIS_PORT", 6380),
        ("BROADCAST_REDIS_PASSWORD", "s3cret", "REDIS_PASSWORD", "s3cret"),
        ("BROADCAST_REDIS_PASSWORD", "", "REDIS_PASSWORD", None),
        ("BROADCAST_REDIS_DATABASE", "3", "REDIS_DATABASE", 3),
        ("BROADCAST_CHANNELS_PREFIX", "app_", "CHANNELS_PREFIX", "app_"),
        ("JWT_SECRET", "from-env", "JWT_SECRET", "from-env"),
        (
            "CORS_ALLOWED_ORIGINS",
            "https://a.example, https://b.example",
            "CORS_ALLOWED_ORIGINS",
            ("https://a.example", "https://b.example"),
        ),
    ],
)
def test_environment_fallback(settings, monkeypatch, env, raw, key, expected):
    settings.BROADCASTING = {}
    monkeypatch.setenv(env, raw)
    reload_broadcasting_settings()
    assert getattr(broadcasting_settings, key) == expected


def test_environment_is_read_again_after_reload(settings, monkeypatch):
    settings.BROADCASTING = {}
    monkeypatch.setenv("BROADCAST_WEBSOCKET_PORT", "9001")
    reload_broadcasting_settings()
    assert broadcasting_settings.WEBSOCKET_PORT == 9001
    monkeypatch.setenv("BROADCAST_WEBSOCKET_PORT", "9002")
    assert broadcasting_settings.WEBSOCKET_PORT == 9001  # cached until reload
    reload_broadcasting_settings()
    assert broadcasting_settings.WEBSOCKET_PORT == 9002


def test_unknown_key_is_improperly_configured_and_named(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVR": "log"}
    with pytest.raises(ImproperlyConfigured, match="DEFAULT_DRIVR"):
        broadcasting_settings.DEFAULT_DRIVER


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("WEBSOCKET_PORT", 70000),
        ("WEBSOCKET_PORT", "eighty"),
        ("WEBSOCKET_PORT", True),
        ("WEBSOCKET_ENABLED", "maybe"),
        ("REDIS_DATABASE", -1),
        ("DEFAULT_DRIVER", 5),
        ("CORS_ALLOWED_ORIGINS", 5),
        ("DRIVERS", {"custom": {"OPTIONS": {}}}),
        ("DRIVERS", ["log"]),
        ("MAX_CHANNEL_NAME_LENGTH", 0),
    ],
)
def test_bad_value_is_improperly_configured_naming_the_key(settings, key, value):
    settings.BROADCASTING = {key: value}
    with pytest.raises(ImproperlyConfigured, match=key):
        getattr(broadcasting_settings, key)


def test_bad_environment_value_names_the_variable(settings, monkeypatch):
    settings.BROADCASTING = {}
    monkeypatch.setenv("BROADCAST_REDIS_PORT", "not-a-port")
    reload_broadcasting_settings()
    with pytest.raises(ImproperlyConfigured, match="BROADCAST_REDIS_PORT"):
        broadcasting_settings.REDIS_PORT


def test_broadcasting_must_be_a_dict(settings):
    settings.BROADCASTING = ["DEFAULT_DRIVER"]
    with pytest.raises(ImproperlyConfigured, match="BROADCASTING"):
        broadcasting_settings.DEFAULT_DRIVER


def test_override_settings_resets_the_cache():
    with override_settings(BROADCASTING={"DEFAULT_DRIVER": "null"}):
        assert broadcasting_settings.DEFAULT_DRIVER == "null"
        with override_settings(BROADCASTING={"DEFAULT_DRIVER": "log"}):
            assert broadcasting_settings.DEFAULT_DRIVER == "log"
        assert broadcasting_settings.DEFAULT_DRIVER == "null"


def test_drivers_are_merged_over_the_built_in_ones(settings):
    settings.BROADCASTING = {"DRIVERS": {"audit": {"BACKEND": "django_broadcasting.drivers.log.LogDriver"}}}
    drivers = broadcasting_settings.DRIVERS
    assert drivers["audit"]["BACKEND"].endswith("LogDriver")
    for alias in DEFAULT_DRIVERS:
        assert alias in drivers


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="NOT_A_SETTING"):
        broadcasting_settings.NOT_A_SETTING


def test_validate_reports_the_first_bad_key(settings):
    settings.BROADCASTING = {"PING_INTERVAL": -5}
    with pytest.raises(ImproperlyConfigured, match="PING_INTERVAL"):
        broadcasting_settings.validate()


def test_reload_hooks_run_on_setting_changed(settings):
    calls = []
    hook = on_reload(lambda: calls.append(1))
    try:
        settings.BROADCASTING = {"DEFAULT_DRIVER": "null"}
        assert calls
    finally:
        from django_broadcasting.conf import _reset_hooks

        _reset_hooks.remove(hook)


def test_every_option_has_a_parser_and_a_valid_default(settings):
    settings.BROADCASTING = {}
    for name, option in OPTIONS.items():
        assert callable(option.parse), name
        getattr(broadcasting_settings, name)
