"""URLs of the broadcasting HTTP API: ``path("", include("django_broadcasting.http.urls"))``."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "django_broadcasting"

urlpatterns = [
    path("api/broadcast/events", views.trigger, name="trigger"),
]
