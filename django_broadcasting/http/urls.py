"""URLs of the broadcasting HTTP API: ``path("", include("django_broadcasting.http.urls"))``."""

from __future__ import annotations

from django.urls import path

from . import metrics, stats, token, views

app_name = "django_broadcasting"

urlpatterns = [
    path("api/broadcast/events", views.trigger, name="trigger"),
    path("api/broadcast/stats", stats.stats, name="stats"),
    path("metrics", metrics.metrics, name="metrics"),
    path("broadcasting/token", token.token, name="token"),
]
