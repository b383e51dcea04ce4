"""System checks: every id fires on the setup it names and stays quiet otherwise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from django_broadcasting.checks import check_deployment, check_settings
from tests.servers import REPO_ROOT, run_manage, server_env

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


# -- deployment checks (manage.py check --deploy) -------------------------------------------------
def deploy_ids():
    return sorted(message.id for message in check_deployment())


def test_the_demo_settings_get_warnings_not_errors():
    # The example project as `make demo` runs it: DEBUG, ALLOWED_HOSTS = ['*'], a django-insecure key.
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), "check", "--deploy"],
        cwd=REPO_ROOT,
        env=server_env({"JWT_SECRET": ""}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr  # warnings do not stop anything
    out = result.stdout + result.stderr
    for check_id in ("W004", "W005", "W006"):
        assert f"django_broadcasting.{check_id}" in out, out
    assert "django_broadcasting.E" not in out
    assert "no issues" in run_manage("check", env={"JWT_SECRET": "a-secret-for-the-check-0123456789"})
