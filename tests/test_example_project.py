"""The example project's settings: embedded default, Redis switch, environment fall-backs."""

from __future__ import annotations

import json

from tests.servers import run_manage

PRINT_CONFIG = (
    "import json; from django.conf import settings; "
    "from django_broadcasting.conf import broadcasting_settings as b; "
    "print(json.dumps({'layer': settings.CHANNEL_LAYERS['default'], 'jwt': b.JWT_SECRET, "
    "'driver': b.DEFAULT_DRIVER, 'db': str(settings.DATABASES['default']['NAME']), "
    "'apps': settings.INSTALLED_APPS, 'asgi': settings.ASGI_APPLICATION}, default=str))"
)


def config(env: dict[str, str] | None = None) -> dict:
    out = run_manage("shell", "-v", "0", "-c", PRINT_CONFIG, env={"JWT_SECRET": "", **(env or {})})
    return json.loads(out.strip().splitlines()[-1])


def test_default_is_the_in_memory_layer_and_daphne_first():
    conf = config()
    assert conf["layer"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert conf["apps"][0] == "daphne"
    assert "channels" in conf["apps"] and "django_broadcasting" in conf["apps"]
    assert conf["asgi"] == "example_project.asgi.application"


def test_redis_layer_from_environment():
    conf = config(
        {
            "BROADCAST_CHANNEL_LAYER": "redis",
            "BROADCAST_REDIS_HOST": "10.1.2.3",
            "BROADCAST_REDIS_PORT": "6390",
        }
    )
    assert conf["layer"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    host = conf["layer"]["CONFIG"]["hosts"][0]
    assert host["address"] == "redis://10.1.2.3:6390/0"


def test_environment_reaches_broadcasting_settings(tmp_path):
    db = tmp_path / "x.sqlite3"
    conf = config({"JWT_SECRET": "from-the-environment", "BROADCAST_DRIVER": "log", "DATABASE_PATH": str(db)})
    assert conf["jwt"] == "from-the-environment"
    assert conf["driver"] == "log"
    assert conf["db"] == str(db)


def test_system_checks_pass():
    assert "no issues" in run_manage("check", env={"JWT_SECRET": "a-secret-for-the-check-0123456789"})
