"""URLs of the example project: the admin, django-broadcasting's HTTP endpoints and the demo site."""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("django_broadcasting.http.urls")),
    path("chat/", include("example_project.chat.urls")),
    path("", include("example_project.demo.urls")),
]

# DEBUG only (an empty list otherwise): daphne/uvicorn then serve broadcasting.js and the demo's files.
urlpatterns += staticfiles_urlpatterns()
