"""System checks: every id fires on the setup it names and stays quiet otherwise."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_broadcasting.checks import check_deployment, check_settings
from tests.servers import REPO_ROOT

MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS_LAYER = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}


SAFE_SECRET_KEY = "p8#Vq2!zR7mK@4xL9wN3$bT6yH1&cJ5dF0gS8aE2uI7oP4lZ9-Xy1"


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
        "PUSHER_APP_KEY",
        "PUSHER_APP_ID",
        "PUSHER_APP_SECRET",
        "PUSHER_HOST",
        "BROADCAST_WEBSOCKET_HOST",
        "BROADCAST_METRICS_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    settings.DEBUG = False
    settings.SECRET_KEY = SAFE_SECRET_KEY
    settings.ALLOWED_HOSTS = ["example.com"]
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


# -- deployment checks (manage.py check --deploy) -------------------------------------------------
def deploy_ids():
    return sorted(message.id for message in check_deployment())


def test_a_sane_deployment_passes(settings):
    settings.BROADCASTING = {**settings.BROADCASTING, "PUSHER_APP_SECRET": "p"}
    assert deploy_ids() == []


@pytest.mark.parametrize("key", ["django-insecure-abc" + "x" * 60, "short-key", "a" * 60])
def test_w005_jwt_and_pusher_keys_from_an_insecure_secret_key(settings, key):
    settings.SECRET_KEY = key
    settings.BROADCASTING = {"CORS_ALLOWED_ORIGINS": ["https://example.com"]}
    [warning] = check_deployment()
    assert warning.id == "django_broadcasting.W005"
    assert "WebSocket tokens" in warning.msg and "Pusher" in warning.msg
    settings.BROADCASTING = {**settings.BROADCASTING, "JWT_SECRET": "j", "PUSHER_APP_SECRET": "p"}
    assert deploy_ids() == []
    # Only RS256 tokens accepted: SECRET_KEY keys no token, only the Pusher signatures.
    settings.BROADCASTING = {
        "CORS_ALLOWED_ORIGINS": ["https://example.com"],
        "JWT_ALGORITHMS": ["RS256"],
        "JWT_PUBLIC_KEY": "unused",
    }
    [warning] = check_deployment()
    assert "WebSocket tokens" not in warning.msg and "Pusher" in warning.msg


def test_w006_origin_check_off(settings):
    settings.BROADCASTING = {**settings.BROADCASTING, "PUSHER_APP_SECRET": "p", "CORS_ALLOWED_ORIGINS": ["*"]}
    assert deploy_ids() == ["django_broadcasting.W006"]
    settings.BROADCASTING = {"JWT_SECRET": "s", "PUSHER_APP_SECRET": "p"}
    settings.ALLOWED_HOSTS = ["*"]
    assert deploy_ids() == ["django_broadcasting.W006"]
    assert ids(settings) == ["django_broadcasting.W004"]  # and W004 says '*' accepts every origin
    assert "every browser origin" in check_settings()[0].msg


def test_w004_under_deploy_considers_wildcard_hosts_and_insecure_keys_with_debug(settings):
    settings.DEBUG = True
    settings.BROADCASTING = {"JWT_SECRET": "s", "PUSHER_APP_SECRET": "p"}
    assert ids(settings) == [] and deploy_ids() == []  # DEBUG with a real allow-list: quiet
    settings.ALLOWED_HOSTS = ["*"]
    assert ids(settings) == []  # runserver stays quiet for the demo
    assert deploy_ids() == ["django_broadcasting.W004", "django_broadcasting.W006"]
    settings.ALLOWED_HOSTS = ["example.com"]
    settings.SECRET_KEY = "django-insecure-" + "z" * 60
    assert deploy_ids() == ["django_broadcasting.W004"]


@pytest.mark.parametrize(
    ("host", "flagged"),
    [("0.0.0.0", True), ("::", True), ("10.1.2.3", True), ("ws.example.com", True),
     ("127.0.0.1", False), ("::1", False), ("localhost", False)],
)  # fmt: skip
def test_w007_metrics_open_on_a_public_bind(settings, host, flagged):
    settings.BROADCASTING = {**settings.BROADCASTING, "PUSHER_APP_SECRET": "p", "WEBSOCKET_HOST": host}
    assert deploy_ids() == (["django_broadcasting.W007"] if flagged else [])
    settings.BROADCASTING = {**settings.BROADCASTING, "METRICS_TOKEN": "m"}
    assert deploy_ids() == []


def test_w008_pusher_secret_missing_when_another_program_signs(settings, monkeypatch):
    assert deploy_ids() == []  # default key and id: only this project signs
    monkeypatch.setenv("PUSHER_APP_KEY", "laravel-key")
    from django_broadcasting.conf import reload_broadcasting_settings

    reload_broadcasting_settings()
    [warning] = check_deployment()
    assert warning.id == "django_broadcasting.W008" and "PUSHER_APP_KEY" in warning.msg
    monkeypatch.setenv("PUSHER_APP_SECRET", "shared-secret")
    reload_broadcasting_settings()
    assert deploy_ids() == []


def test_every_check_id_is_documented():
    source = (REPO_ROOT / "django_broadcasting" / "checks.py").read_text()
    in_code = set(re.findall(r'id="(django_broadcasting\.[EW]\d{3})"', source))
    docs = (REPO_ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `(django_broadcasting\.[EW]\d{3})` \|", docs, re.MULTILINE))
    assert in_code and in_code == documented, (in_code - documented, documented - in_code)
