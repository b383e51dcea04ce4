"""URLs of the broadcasting HTTP API: ``path("", include("django_broadcasting.http.urls"))``."""

from __future__ import annotations

from django.urls import path

from . import metrics_view, pusher_auth, stats, token, trigger_endpoint

app_name = "django_broadcasting"

urlpatterns = [
    path("api/broadcast/events", trigger_endpoint.trigger_view, name="trigger"),
    path("api/broadcast/stats", stats.stats, name="stats"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("broadcasting/token", token.token, name="token"),
    # Laravel Echo / pusher-js: channel authorization, user sign-in, and the Pusher HTTP API.
    path("broadcasting/auth", pusher_auth.channel_auth, name="pusher-auth"),
    path("broadcasting/user-auth", pusher_auth.user_auth, name="pusher-user-auth"),
    path("apps/<str:app_id>/events", trigger_endpoint.pusher_events, name="pusher-events"),
    path("apps/<str:app_id>/batch_events", trigger_endpoint.pusher_batch_events, name="pusher-batch-events"),
    path("apps/<str:app_id>/channels", trigger_endpoint.pusher_channels, name="pusher-channels"),
    path(
        "apps/<str:app_id>/channels/<str:channel_name>",
        trigger_endpoint.pusher_channel,
        name="pusher-channel",
    ),
    path(
        "apps/<str:app_id>/channels/<str:channel_name>/users",
        trigger_endpoint.pusher_channel_users,
        name="pusher-channel-users",
    ),
    path(
        "apps/<str:app_id>/users/<str:user_id>/terminate_connections",
        trigger_endpoint.pusher_terminate_connections,
        name="pusher-terminate",
    ),
    # The PyPI pusher client posts terminate_connections without the /apps/{id} prefix.
    path("users/<str:user_id>/terminate_connections", trigger_endpoint.pusher_terminate_connections),
]
