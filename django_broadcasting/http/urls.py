"""URLs of the broadcasting HTTP API: ``path("", include("django_broadcasting.http.urls"))``."""

from __future__ import annotations

from django.urls import path

from . import token, views

app_name = "django_broadcasting"

urlpatterns = [
    path("api/broadcast/events", views.trigger, name="trigger"),
    path("broadcasting/token", token.token, name="token"),
]
