"""The Django admin's live "Broadcasting statistics" page, for staff only.

This app has no models, so the page is wired into the admin site directly: ``install(site)``
adds two URLs to the site (the page and the JSON it polls every two seconds) and a
"Broadcasting" entry to its app list, so the page is linked from the admin index and the
navigation sidebar. Django's admin autodiscovery imports this module, which installs it on
the default ``admin.site``; a project with its own ``AdminSite`` calls
``django_broadcasting.admin.install(my_site)``.

Both URLs go through ``site.admin_view``: anyone who is not active staff gets the admin
login page, never the data. The figures come from ``http.stats.get_stats()``: the hub of
this process when it serves the WebSockets, otherwise the running server's stats API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from .exceptions import BroadcastError
from .http.stats import get_stats

__all__ = ["install", "POLL_INTERVAL_MS"]

APP_LABEL = "django_broadcasting"
PAGE_NAME = f"{APP_LABEL}_stats"
DATA_NAME = f"{APP_LABEL}_stats_data"
#: How often the page refreshes its figures.
POLL_INTERVAL_MS = 2000


def _read_stats() -> tuple[dict[str, Any] | None, str | None]:
    try:
        return get_stats(), None
    except (BroadcastError, TimeoutError, OSError) as exc:
        return None, " ".join(str(getattr(exc, "detail", exc)).split())


def stats_page(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """The page: figures rendered now, then refreshed in place by polling ``stats_data``."""
    stats, error = _read_stats()
    context = {
        **site.each_context(request),
        "title": "Broadcasting statistics",
        "app_label": APP_LABEL,
        "stats": stats,
        "stats_error": error,
        "data_url": reverse(f"{site.name}:{DATA_NAME}"),
        "poll_interval_ms": POLL_INTERVAL_MS,
        # Django 6.1's admin styles <ol class="breadcrumbs"> list items; earlier ones a <div>.
        "breadcrumbs_as_list": django.VERSION >= (6, 1),
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


def _urls(site: AdminSite) -> list[URLPattern]:
    return [
        path(f"{APP_LABEL}/stats/", site.admin_view(lambda r: stats_page(r, site)), name=PAGE_NAME),
        path(f"{APP_LABEL}/stats/data/", site.admin_view(lambda r: stats_data(r, site)), name=DATA_NAME),
    ]


def _app_entry(site: AdminSite) -> dict[str, Any]:
    url = reverse(f"{site.name}:{PAGE_NAME}")
    return {
        "name": "Broadcasting",
        "app_label": APP_LABEL,
        "app_url": url,
        "has_module_perms": True,
        "models": [
            {
                "name": "Live statistics",
                "object_name": "BroadcastStats",
                "admin_url": url,
                "add_url": None,
                "view_only": True,
                "perms": {"add": False, "change": False, "delete": False, "view": True},
            }
        ],
    }


def install(site: AdminSite = admin.site) -> AdminSite:
    """Add the stats page to ``site`` (its URLs and its app-list entry); idempotent."""
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
            apps = sorted([*apps, _app_entry(site)], key=lambda app: app["name"].lower())
        return apps

    site.get_urls = get_urls  # type: ignore[method-assign]
    site.get_app_list = get_app_list  # type: ignore[method-assign]
    site._broadcasting_stats_installed = True  # type: ignore[attr-defined]
    return site


install(admin.site)
