"""WebSocket URL patterns, for ``django_broadcasting.asgi`` or a project's own router::

    from django_broadcasting.server.routing import websocket_urlpatterns
    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": BroadcastAuthMiddlewareStack(URLRouter([*websocket_urlpatterns, websocket_not_found])),
    })

``websocket_not_found`` goes last: it refuses a handshake on any other path (HTTP 403), where
Channels' ``URLRouter`` would raise ``ValueError("No route found ...")`` and log a traceback for
every such request an anonymous client makes.

Importing this module has no side effect: the server's startup (``LifespanApp``) or a
consumer's first connection marks the process as serving, and from then on a broadcast
published in this process is handed to its hub directly.
"""

from __future__ import annotations

from typing import Any

from django.urls import re_path

from .protocols.native.consumer import BroadcastConsumer

websocket_urlpatterns = [
    re_path(r"^ws/?$", BroadcastConsumer.as_asgi()),
    re_path(r"^ws/(?P<channel>[^/?]+)/?$", BroadcastConsumer.as_asgi()),
]

try:  # the Pusher protocol endpoint, /app/{key}
    from .protocols.pusher.routing import pusher_urlpatterns
except ImportError:  # pragma: no cover - not installed in this build
    pusher_urlpatterns = []

websocket_urlpatterns += pusher_urlpatterns


async def refuse_unrouted(scope: dict, receive: Any, send: Any) -> None:
    """Refuse a WebSocket handshake on a path no route serves (a close before accept: HTTP 403)."""
    message = await receive()
    if message.get("type") == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})


#: The catch-all route to put after every WebSocket route of the project.
websocket_not_found = re_path(r"", refuse_unrouted)
