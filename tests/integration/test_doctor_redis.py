"""``manage.py broadcast doctor``: the setup and every broadcasting check, on one screen."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

MEMORY_LAYER = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def doctor(*args: str) -> str:
    out = StringIO()
    call_command("broadcast", "doctor", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, settings):
    for name in ("BROADCAST_DRIVER", "JWT_SECRET", "CORS_ALLOWED_ORIGINS", "BROADCAST_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    settings.CHANNEL_LAYERS = MEMORY_LAYER
    settings.DEBUG = True
    settings.BROADCASTING = {}


def test_connect_pings_redis_and_reports_an_unreachable_one(settings):
    from tests.servers import free_port

    settings.BROADCASTING = {"DEFAULT_DRIVER": "redis", "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("broadcast", "doctor", "--connect", stdout=out)
    assert "does not answer" in out.getvalue()


def test_connect_with_a_live_redis(settings, redis_url):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "redis", "REDIS_URL": redis_url}
    assert "✅ Redis at" in doctor("--connect")
