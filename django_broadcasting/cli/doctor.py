"""``broadcast doctor``: one screen that tells what is set up and what is misconfigured.

It shows the facts a problem report needs (versions, driver, channel layer, Redis, token signing,
allowed origins, tasks backend, ASGI application), then every broadcasting system check
(``django_broadcasting.E001``... from ``checks.py``, the same ``manage.py check`` runs) with its
hint. ``--deploy`` also reports what would be wrong with ``DEBUG = False``. Nothing is opened on the
network unless ``--connect`` is given (then Redis is pinged). Exit status 1 when an error is found.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from django.conf import settings
from django.core.checks import ERROR, WARNING
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from .base import one_line, say

LABEL_WIDTH = 14


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor", help="Show the broadcasting setup and what is misconfigured, on one screen."
    )
    parser.add_argument(
        "--deploy", action="store_true", help="Also report what would be wrong with DEBUG = False."
    )
    parser.add_argument("--connect", action="store_true", help="Also ping Redis when it is configured.")
    parser.set_defaults(handler=handle_doctor)


def _row(command: BaseCommand, label: str, value: str) -> None:
    say(command, f"  {label:<{LABEL_WIDTH}}{value}")


def _facts(command: BaseCommand) -> None:
    import django

    import django_broadcasting
    from django_broadcasting.conf import broadcasting_settings

    say(command, "django-broadcasting doctor")
    _row(
        command,
        "Versions",
        f"django-broadcasting {django_broadcasting.__version__}, Django {django.get_version()}, "
        f"Python {platform.python_version()}",
    )
    _row(
        command,
        "Settings",
        f"{os.environ.get('DJANGO_SETTINGS_MODULE') or '(configured in code)'}, DEBUG = {settings.DEBUG}",
    )
    driver = broadcasting_settings.default_driver_alias()
    backend = broadcasting_settings.DRIVERS.get(driver, {}).get("BACKEND", "(not configured)")
    _row(command, "Driver", f"{driver} ({backend})")
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get("default", {}).get("BACKEND", "(none)")
    _row(command, "Channel layer", layer)
    if driver == "redis" and broadcasting_settings.REDIS_CLUSTER_NODES:  # Redis Cluster
        _row(
            command,
            "Redis Cluster",
            ", ".join(f"{h}:{p}" for h, p in broadcasting_settings.REDIS_CLUSTER_NODES),
        )
    elif driver == "redis":
        redis_at = broadcasting_settings.REDIS_URL or (
            f"{broadcasting_settings.REDIS_HOST}:{broadcasting_settings.REDIS_PORT}"
            f"/{broadcasting_settings.REDIS_DATABASE}"
        )
        _row(command, "Redis", redis_at)
    if broadcasting_settings.JWT_PUBLIC_KEY:
        signing = "public key (JWT_PUBLIC_KEY)"
    elif broadcasting_settings.JWT_SECRET:
        signing = "JWT_SECRET"
    else:
        signing = "SECRET_KEY (no JWT_SECRET set)"
    _row(command, "Tokens", f"verified with {signing}")
    origins = broadcasting_settings.CORS_ALLOWED_ORIGINS
    _row(
        command,
        "Origins",
        ", ".join(origins) if origins else f"ALLOWED_HOSTS ({', '.join(settings.ALLOWED_HOSTS) or 'empty'})",
    )
    _row(command, "Tasks", _tasks_fact())
    asgi = getattr(settings, "ASGI_APPLICATION", None)
    apps = list(settings.INSTALLED_APPS)
    runserver = "daphne's runserver" if "daphne" in apps else "WSGI runserver: no WebSockets (add 'daphne')"
    _row(command, "ASGI", f"{asgi or '(ASGI_APPLICATION not set)'}; {runserver}")


def _tasks_fact() -> str:
    try:
        from django_broadcasting.tasks import framework_for

        framework = framework_for()
    except Exception as exc:  # a broken TASKS setting is a finding, not a crash
        return f"cannot tell: {one_line(exc)}"
    if framework is None:
        return "no tasks framework: queued broadcasts are sent at once"
    configured = (getattr(settings, "TASKS", None) or {}).get("default", {}).get("BACKEND")
    return f"{framework.__name__}, default backend {configured or 'immediate (the default)'}"


def _problems(deploy: bool) -> list[Any]:
    from django_broadcasting.checks import check_settings

    found = list(check_settings())
    if deploy and settings.DEBUG:
        ids = {(m.id, m.msg) for m in found}
        with override_settings(DEBUG=False):
            found += [m for m in check_settings() if (m.id, m.msg) not in ids]
    return found


def _ping_redis(command: BaseCommand) -> bool:
    from django_broadcasting.conf import broadcasting_settings

    if broadcasting_settings.default_driver_alias() != "redis":
        return True
    import redis

    if broadcasting_settings.REDIS_CLUSTER_NODES:
        return _ping_cluster(command, broadcasting_settings.REDIS_CLUSTER_NODES)
    url = broadcasting_settings.REDIS_URL or (
        f"redis://{broadcasting_settings.REDIS_HOST}:{broadcasting_settings.REDIS_PORT}"
        f"/{broadcasting_settings.REDIS_DATABASE}"
    )
    try:
        client = redis.Redis.from_url(
            url,
            password=broadcasting_settings.REDIS_PASSWORD or None,
            socket_connect_timeout=2,
            socket_timeout=2,
        )
        client.ping()
        client.close()
    except Exception as exc:
        say(command, f"  ❌ Redis at {url} does not answer: {one_line(exc)}")
        return False
    say(command, f"  ✅ Redis at {url} answers")
    return True


def _ping_cluster(command: BaseCommand, nodes: tuple[tuple[str, int], ...]) -> bool:
    """Ask the seed nodes of a Redis Cluster for ``cluster_state`` until one answers."""
    import redis

    from django_broadcasting.conf import broadcasting_settings

    errors = []
    for host, port in nodes:
        address = f"{host}:{port}"
        client = redis.Redis(
            host=host,
            port=port,
            password=broadcasting_settings.REDIS_PASSWORD or None,
            socket_connect_timeout=2,
            socket_timeout=2,
        )
        try:
            state = client.cluster("INFO").get("cluster_state")
        except Exception as exc:  # noqa: BLE001 - try the next seed
            errors.append(f"{address}: {one_line(exc)}")
            continue
        finally:
            client.close()
        if state == "ok":
            say(command, f"  ✅ Redis Cluster at {address} answers (cluster_state:ok)")
            return True
        say(command, f"  ❌ Redis Cluster at {address} answers cluster_state:{state}")
        return False
    say(command, f"  ❌ no Redis Cluster seed node answers: {'; '.join(errors)}")
    return False


def handle_doctor(command: BaseCommand, options: dict[str, Any]) -> None:
    _facts(command)
    say(command)
    problems = _problems(bool(options.get("deploy")))
    reachable = _ping_redis(command) if options.get("connect") else True
    errors = [m for m in problems if m.level >= ERROR]
    for message in sorted(problems, key=lambda m: (-m.level, m.id or "")):
        mark = "❌" if message.level >= ERROR else "⚠️ " if message.level >= WARNING else "ℹ️ "
        say(command, f"  {mark} {message.id}: {one_line(message.msg)}")
        if message.hint:
            say(command, f"     → {one_line(message.hint)}")
    if not problems and reachable:
        say(
            command,
            "  ✅ No problems found." + ("" if options.get("deploy") else " (--deploy: as in production)"),
        )
    if errors or not reachable:
        raise CommandError(f"❌ {len(errors) + (not reachable)} problem(s) must be fixed (see above).")
