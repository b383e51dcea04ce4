"""The ready ASGI application: Django's HTTP views plus the broadcasting WebSocket routes.

Point a server at it (``daphne django_broadcasting.asgi:application``, uvicorn, or
``ASGI_APPLICATION``); ``DJANGO_SETTINGS_MODULE`` must be set. This module is the
composition root: ``server/`` never imports ``http/`` and vice versa.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

# Django must be set up before anything imports models (the auth middleware does).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from .auth.middleware import BroadcastAuthMiddlewareStack  # noqa: E402
from .server.lifespan import LifespanApp  # noqa: E402
from .server.routing import websocket_not_found, websocket_urlpatterns  # noqa: E402

application = LifespanApp(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": BroadcastAuthMiddlewareStack(
                URLRouter([*websocket_urlpatterns, websocket_not_found])
            ),
        }
    )
)
