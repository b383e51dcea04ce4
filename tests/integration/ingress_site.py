"""URLs and a middleware of a test site that mounts the broadcasting URLs under a prefix.

``urlpatterns`` puts ``django_broadcasting.http.urls`` under ``bc/`` (nothing at the root), and
``MarkMiddleware`` stamps every response Django produces with ``X-Through-Django``, so a test can
tell which front door answered: the composition root's ASGI ingress (no stamp) or Django's
handler (stamped). ``tests.integration.ingress_settings`` wires both in.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path

MARK_HEADER = "X-Through-Django"
PREFIX = "/bc"


class MarkMiddleware:
    """A plain (sync-only) Django middleware, as most projects have: it stamps each response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response[MARK_HEADER] = "1"
        return response


urlpatterns = [
    path("admin/", admin.site.urls),
    path("bc/", include("django_broadcasting.http.urls")),
]
