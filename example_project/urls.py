"""URLs of the example project: the admin and django-broadcasting's HTTP endpoints."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("django_broadcasting.http.urls")),
]
