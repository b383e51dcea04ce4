"""WebSocket URL patterns, for ``django_broadcasting.asgi`` or a project's own router::

    from django_broadcasting.server.routing import websocket_urlpatterns
    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": BroadcastAuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    })

Importing this module marks the process as a server: with the in-memory default, a
broadcast published in this process is handed to its hub directly.
"""

from __future__ import annotations

from django.urls import re_path

from .consumers import BroadcastConsumer
from .hub import mark_serving

websocket_urlpatterns = [
    re_path(r"^ws/?$", BroadcastConsumer.as_asgi()),
    re_path(r"^ws/(?P<channel>[^/?]+)/?$", BroadcastConsumer.as_asgi()),
]

try:  # the Pusher protocol endpoint, /app/{key}
    from .protocols.pusher_routing import pusher_urlpatterns
except ImportError:  # pragma: no cover - not installed in this build
    pusher_urlpatterns = []

websocket_urlpatterns += pusher_urlpatterns

mark_serving()
