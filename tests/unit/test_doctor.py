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


def test_a_development_setup_has_no_problem():
    text = doctor()
    for label in ("Versions", "Driver", "Channel layer", "Tokens", "Origins", "Tasks", "ASGI"):
        assert f"  {label}" in text, label
    assert "websocket (django_broadcasting.backends.local.LocalBackend" in text
    assert "No problems found" in text


def test_deploy_reports_what_debug_false_would_warn_about():
    text = doctor("--deploy")
    assert "django_broadcasting.W001" in text  # in-memory layer in production
    assert "django_broadcasting.W002" in text and "→ Set BROADCASTING['JWT_SECRET']" in text
    assert "django_broadcasting.W004" in text


def test_an_error_is_shown_with_its_hint_and_fails_the_command(settings):
    settings.CHANNEL_LAYERS = {}
    out = StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("broadcast", "doctor", stdout=out)
    assert "❌ django_broadcasting.E003" in out.getvalue()
    assert "→ Add CHANNEL_LAYERS" in out.getvalue()
