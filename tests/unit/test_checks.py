"""System checks: every id fires on the setup it names and stays quiet otherwise."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_broadcasting.checks import check_settings

MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


def ids(settings):
    return sorted(message.id for message in check_settings())


@pytest.fixture(autouse=True)
def safe_production(settings, monkeypatch):
    """A setup that raises nothing; each test breaks one thing."""
    for name in (
        "BROADCAST_DRIVER",
        "JWT_SECRET",
        "CORS_ALLOWED_ORIGINS",
        "BROADCAST_REDIS_HOST",
        "BROADCAST_REDIS_URL",
        "BROADCAST_REDIS_ENABLED",
        "JWT_PUBLIC_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    settings.DEBUG = False
    settings.CHANNEL_LAYERS = REDIS_LAYER
    settings.BROADCASTING = {"JWT_SECRET": "s", "CORS_ALLOWED_ORIGINS": ["https://example.com"]}


def test_a_sane_setup_passes(settings):
    assert ids(settings) == []


def test_e001_invalid_setting_names_the_key(settings):
    settings.BROADCASTING = {"WEBSOCKET_PORT": "x"}
    [error] = check_settings()
    assert error.id == "django_broadcasting.E001" and "WEBSOCKET_PORT" in error.msg


def test_e001_unknown_key(settings):
    settings.BROADCASTING = {"NOT_A_KEY": 1}
    [error] = check_settings()
    assert error.id == "django_broadcasting.E001" and "NOT_A_KEY" in error.msg


def test_e002_unknown_default_driver(settings):
    settings.BROADCASTING = {**settings.BROADCASTING, "DEFAULT_DRIVER": "carrier-pigeon"}
    assert ids(settings) == ["django_broadcasting.E002"]


def test_e002_unimportable_backend(settings):
    settings.BROADCASTING = {
        **settings.BROADCASTING,
        "DEFAULT_DRIVER": "x",
        "DRIVERS": {"x": {"BACKEND": "nowhere.Driver"}},
    }
    assert ids(settings) == ["django_broadcasting.E002"]


def test_e003_no_channel_layer_for_the_websocket_driver(settings):
    settings.CHANNEL_LAYERS = {}
    assert ids(settings) == ["django_broadcasting.E003"]


def test_e003_not_raised_for_drivers_that_need_no_layer(settings):
    settings.CHANNEL_LAYERS = {}
    settings.BROADCASTING = {**settings.BROADCASTING, "DEFAULT_DRIVER": "log"}
    assert ids(settings) == []


def test_w001_in_memory_layer_without_debug(settings):
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    assert ids(settings) == ["django_broadcasting.W001"]
    settings.DEBUG = True
    assert ids(settings) == []


def test_w002_missing_jwt_secret(settings):
    settings.BROADCASTING = {"CORS_ALLOWED_ORIGINS": ["https://example.com"]}
    assert ids(settings) == ["django_broadcasting.W002"]


def test_w002_is_quiet_while_developing(settings):
    """A fresh project (DEBUG = True, no JWT_SECRET) prints no warning on every command."""
    settings.BROADCASTING = {}
    settings.DEBUG = True
    assert ids(settings) == []


def test_w002_silenced_by_the_environment(settings, monkeypatch):
    settings.BROADCASTING = {"CORS_ALLOWED_ORIGINS": ["https://example.com"]}
    monkeypatch.setenv("JWT_SECRET", "from-env")
    from django_broadcasting.conf import reload_broadcasting_settings

    reload_broadcasting_settings()
    assert ids(settings) == []


def test_w003_redis_driver_without_address(settings):
    # W003 is about configuration only; whether the redis driver module imports is E002's business.
    settings.BROADCASTING = {**settings.BROADCASTING, "DEFAULT_DRIVER": "redis"}
    assert "django_broadcasting.W003" in ids(settings)
    settings.BROADCASTING = {**settings.BROADCASTING, "REDIS_URL": "redis://cache:6379/0"}
    assert "django_broadcasting.W003" not in ids(settings)
    settings.BROADCASTING = {**settings.BROADCASTING, "REDIS_URL": "http://cache:6379"}
    assert "django_broadcasting.W003" in ids(settings)


def test_w003_quiet_with_an_explicit_host(settings, monkeypatch):
    settings.BROADCASTING = {**settings.BROADCASTING, "REDIS_ENABLED": True}
    assert ids(settings) == ["django_broadcasting.W003"]
    monkeypatch.setenv("BROADCAST_REDIS_HOST", "redis.internal")
    from django_broadcasting.conf import reload_broadcasting_settings

    reload_broadcasting_settings()
    assert ids(settings) == []


def test_w004_empty_cors_origins(settings):
    settings.BROADCASTING = {"JWT_SECRET": "s"}
    assert ids(settings) == ["django_broadcasting.W004"]


def test_checks_are_registered_with_manage_py_check(settings):
    settings.BROADCASTING = {"WEBSOCKET_PORT": 0}
    with pytest.raises(SystemCheckError, match="django_broadcasting.E001"):
        call_command("check")


def test_e003_follows_the_websocket_driver_layer_option(settings):
    settings.CHANNEL_LAYERS = {"default": REDIS_LAYER["default"]}
    settings.BROADCASTING = {
        **settings.BROADCASTING,
        "DRIVERS": {
            "websocket": {
                "BACKEND": "django_broadcasting.drivers.websocket.WebSocketDriver",
                "OPTIONS": {"layer": "broadcast"},
            }
        },
    }
    assert ids(settings) == ["django_broadcasting.E003"]
    settings.CHANNEL_LAYERS = {"broadcast": REDIS_LAYER["default"]}
    assert ids(settings) == []
