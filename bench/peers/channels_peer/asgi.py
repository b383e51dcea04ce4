"""ASGI application of the plain Channels peer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.channels_peer.settings")
django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import BenchConsumer, GroupConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": URLRouter(
            [path("ws", BenchConsumer.as_asgi()), path("ws/<str:group>", GroupConsumer.as_asgi())]
        ),
    }
)
