"""The ready ASGI application: the publish ingress, Django's HTTP views, the WebSocket routes.

Point a server at it (``daphne django_broadcasting.asgi:application``, uvicorn, or
``ASGI_APPLICATION``); ``DJANGO_SETTINGS_MODULE`` must be set. This module is the
composition root: ``server/`` and ``http/`` never import each other (docs/architecture.md). HTTP requests meet
``http.ingress.IngressApp`` first, which answers the Pusher HTTP API and the signed trigger
(wherever ``urls.py`` routes them) without Django's middleware, and hands the rest to Django.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured

if not os.environ.get("DJANGO_SETTINGS_MODULE") and not settings.configured:
    # No guess: a default settings module would be some other project's, or none at all.
    raise ImproperlyConfigured(
        "DJANGO_SETTINGS_MODULE is not set: export it (DJANGO_SETTINGS_MODULE=mysite.settings) before "
        "starting the server on django_broadcasting.asgi:application, or serve your project's own asgi "
        "module that sets it and imports this application."
    )

# Django must be set up before anything imports models (the auth middleware does).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from .auth.middleware import BroadcastAuthMiddlewareStack  # noqa: E402
from .http.ingress import IngressApp  # noqa: E402
from .server.lifespan import LifespanApp  # noqa: E402
from .server.routing import websocket_not_found, websocket_urlpatterns  # noqa: E402

application = LifespanApp(
    ProtocolTypeRouter(
        {
            "http": IngressApp(django_asgi_app),
            "websocket": BroadcastAuthMiddlewareStack(
                URLRouter([*websocket_urlpatterns, websocket_not_found])
            ),
        }
    )
)
