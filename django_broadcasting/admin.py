"""The Django admin's broadcasting pages: live statistics with charts, and the debug console.

- ``stats/``: figures of the moment, charts of the last 15 minutes (per node with Redis), and
  the channel and presence browser (filter by prefix, a channel's members, and for users with
  ``django_broadcasting.disconnect_users`` a form that closes a user's sockets on every node).
- ``console/``: every broadcast, subscribe, unsubscribe, join and leave as it passes, for
  staff with ``django_broadcasting.view_console``. Opening it switches recording on (see
  ``server/console.py``); closing it lets recording stop after ``CONSOLE_WATCH_TTL``.

The app has no admin models, so the pages are wired into the admin site directly: ``install(site)``
adds their URLs to the site and a "Broadcasting" entry to its app list, so the pages are linked
from the admin index and the navigation sidebar. Django's admin autodiscovery imports this module, which installs it on
the default ``admin.site``; a project with its own ``AdminSite`` calls
``django_broadcasting.admin.install(my_site)``.

Every URL goes through ``site.admin_view``: anyone who is not active staff gets the admin
login page, never the data; the console and the disconnect action also check their permission
(403 without it). The figures come from ``stats.read()``: the hub of
this process when it serves the WebSockets, otherwise the running server's stats API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import django
from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from .core.loops import on_loop
from .exceptions import BroadcastError
from .stats import read as get_stats
from .stats.series import CHARTS

__all__ = ["install", "POLL_INTERVAL_MS", "CONSOLE_POLL_MS", "CONSOLE_PERMISSION", "DISCONNECT_PERMISSION"]

APP_LABEL = "django_broadcasting"
PAGE_NAME = f"{APP_LABEL}_stats"
DATA_NAME = f"{APP_LABEL}_stats_data"
DISCONNECT_NAME = f"{APP_LABEL}_disconnect"
CONSOLE_NAME = f"{APP_LABEL}_console"
CONSOLE_DATA_NAME = f"{APP_LABEL}_console_data"
#: How often the stats page refreshes its figures and charts.
POLL_INTERVAL_MS = 2000
#: How often the console page asks for new events.
CONSOLE_POLL_MS = 1000
CONSOLE_PERMISSION = f"{APP_LABEL}.view_console"
DISCONNECT_PERMISSION = f"{APP_LABEL}.disconnect_users"


def _message(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "detail", exc)).split()) or type(exc).__name__


def _read_stats() -> tuple[dict[str, Any] | None, str | None]:
    try:
        return get_stats(series=True), None
    except (BroadcastError, TimeoutError, OSError) as exc:
        return None, _message(exc)


def _run(func: Callable[..., Any], *args: Any) -> Any:
    """Await ``func(*args)`` from a sync view: on the server's loop when this process serves
    WebSockets (the hub belongs to that loop), otherwise in a loop of its own."""
    from .server.hub import get_hub

    hub = get_hub()
    loop = hub.loop if hub.serving else None
    if loop is not None and loop.is_running() and not on_loop(loop):
        return asyncio.run_coroutine_threadsafe(func(*args), loop).result(10)
    return async_to_sync(func)(*args)


def _backend() -> Any:
    from .drivers import get_driver

    return get_driver()


def _base_context(request: HttpRequest, site: AdminSite, title: str) -> dict[str, Any]:
    return {
        **site.each_context(request),
        "title": title,
        "app_label": APP_LABEL,
        # Django 6.1's admin styles <ol class="breadcrumbs"> list items; earlier ones a <div>.
        "breadcrumbs_as_list": django.VERSION >= (6, 1),
    }


def stats_page(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """The page: figures rendered now, then refreshed in place by polling ``stats_data``."""
    stats, error = _read_stats()
    context = {
        **_base_context(request, site, "Broadcasting statistics"),
        "stats": stats,
        "stats_error": error,
        "data_url": reverse(f"{site.name}:{DATA_NAME}"),
        "disconnect_url": reverse(f"{site.name}:{DISCONNECT_NAME}"),
        "can_disconnect": request.user.has_perm(DISCONNECT_PERMISSION),
        "can_view_console": request.user.has_perm(CONSOLE_PERMISSION),
        "console_url": reverse(f"{site.name}:{CONSOLE_NAME}"),
        "chart_titles": [(key, title) for key, title, _, _ in CHARTS],
        "poll_interval_ms": POLL_INTERVAL_MS,
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/django_broadcasting/stats.html", context)


def stats_data(request: HttpRequest, site: AdminSite) -> JsonResponse:
    """The stats document the page polls (staff only, like the page)."""
    stats, error = _read_stats()
    if stats is None:
        return JsonResponse({"error": {"code": "unavailable", "message": error}}, status=503)
    response = JsonResponse(stats)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def disconnect_user(request: HttpRequest, site: AdminSite) -> JsonResponse:
    """Close every socket of the posted ``user_id``, on every node (the HTTP API's terminate_connections)."""
    if not request.user.has_perm(DISCONNECT_PERMISSION):
        return JsonResponse(
            {"error": {"code": "forbidden", "message": f"Needs the permission {DISCONNECT_PERMISSION}."}},
            status=403,
        )
    user_id = (request.POST.get("user_id") or "").strip()
    if not user_id or len(user_id) > 200:
        return JsonResponse({"error": {"code": "bad_request", "message": "Give a user id."}}, status=400)
    try:
        result = _run(_backend().aterminate_user, user_id)
    except (BroadcastError, TimeoutError, OSError) as exc:
        return JsonResponse({"error": {"code": "unavailable", "message": _message(exc)}}, status=503)
    return JsonResponse({"user_id": user_id, **result})


def _require_console(request: HttpRequest) -> None:
    if not request.user.has_perm(CONSOLE_PERMISSION):
        raise PermissionDenied(f"The debug console needs the permission {CONSOLE_PERMISSION}.")


def console_page(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """The debug console: events as they pass, polled from ``console_data``."""
    _require_console(request)
    context = {
        **_base_context(request, site, "Broadcasting debug console"),
        "data_url": reverse(f"{site.name}:{CONSOLE_DATA_NAME}"),
        "stats_url": reverse(f"{site.name}:{PAGE_NAME}"),
        "poll_interval_ms": CONSOLE_POLL_MS,
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/django_broadcasting/console.html", context)


def console_data(request: HttpRequest, site: AdminSite) -> JsonResponse:
    """Keep the console watching; the events after ``?after=<cursor>`` (permission required)."""
    if not request.user.has_perm(CONSOLE_PERMISSION):
        return JsonResponse(
            {"error": {"code": "forbidden", "message": f"Needs the permission {CONSOLE_PERMISSION}."}},
            status=403,
        )
    after = request.GET.get("after") or None
    try:
        data = _run(_backend().aconsole, after, 500)
    except (BroadcastError, TimeoutError, OSError) as exc:
        return JsonResponse({"error": {"code": "unavailable", "message": _message(exc)}}, status=503)
    response = JsonResponse(data)
    response["Cache-Control"] = "no-store"
    return response


def _urls(site: AdminSite) -> list[URLPattern]:
    def view(func: Callable[..., Any]) -> Callable[..., Any]:
        return site.admin_view(lambda request: func(request, site))

    return [
        path(f"{APP_LABEL}/stats/", view(stats_page), name=PAGE_NAME),
        path(f"{APP_LABEL}/stats/data/", view(stats_data), name=DATA_NAME),
        path(f"{APP_LABEL}/stats/disconnect/", view(disconnect_user), name=DISCONNECT_NAME),
        path(f"{APP_LABEL}/console/", view(console_page), name=CONSOLE_NAME),
        path(f"{APP_LABEL}/console/data/", view(console_data), name=CONSOLE_DATA_NAME),
    ]


def _page_entry(name: str, object_name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "object_name": object_name,
        "admin_url": url,
        "add_url": None,
        "view_only": True,
        "perms": {"add": False, "change": False, "delete": False, "view": True},
    }


def _app_entry(site: AdminSite, request: HttpRequest) -> dict[str, Any]:
    url = reverse(f"{site.name}:{PAGE_NAME}")
    models = [_page_entry("Live statistics", "BroadcastStats", url)]
    if request.user.has_perm(CONSOLE_PERMISSION):
        models.append(
            _page_entry("Debug console", "BroadcastConsole", reverse(f"{site.name}:{CONSOLE_NAME}"))
        )
    return {
        "name": "Broadcasting",
        "app_label": APP_LABEL,
        "app_url": url,
        "has_module_perms": True,
        "models": models,
    }


def install(site: AdminSite = admin.site) -> AdminSite:
    """Add the broadcasting pages to ``site`` (their URLs and the app-list entry); idempotent."""
    if getattr(site, "_broadcasting_stats_installed", False):
        return site
    original_urls: Callable[[], list] = site.get_urls
    original_app_list: Callable[..., list] = site.get_app_list

    def get_urls() -> list:
        # Ours first: the admin's catch-all would otherwise answer this path with a 404.
        return _urls(site) + original_urls()

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list:
        apps = original_app_list(request, app_label)
        if app_label in (None, APP_LABEL) and site.has_permission(request):
            # The unmanaged permissions model has no ModelAdmin: this entry is the app's only one.
            apps = [app for app in apps if app.get("app_label") != APP_LABEL]
            apps = sorted([*apps, _app_entry(site, request)], key=lambda app: app["name"].lower())
        return apps

    site.get_urls = get_urls  # type: ignore[method-assign]
    site.get_app_list = get_app_list  # type: ignore[method-assign]
    site._broadcasting_stats_installed = True  # type: ignore[attr-defined]
    return site


install(admin.site)
