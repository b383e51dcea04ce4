"""WebSocket URL of the Pusher protocol: ``/app/{key}`` (what pusher-js and Laravel Echo open).

``server/routing.py`` appends ``pusher_urlpatterns`` to ``websocket_urlpatterns``; a project with
its own router adds them the same way.
"""

from __future__ import annotations

from django.urls import re_path

from .consumer import PusherConsumer

pusher_urlpatterns = [
    re_path(r"^app/(?P<key>[^/?]+)/?$", PusherConsumer.as_asgi()),
]
