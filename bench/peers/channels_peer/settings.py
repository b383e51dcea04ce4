"""Settings of the plain Channels peer (the minimum a Channels project needs)."""

import os

SECRET_KEY = "bench-channels-peer"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
ROOT_URLCONF = "bench.peers.channels_peer.urls"
ASGI_APPLICATION = "bench.peers.channels_peer.asgi.application"
DATABASES = {}
USE_TZ = True

if os.environ.get("PEER_LAYER") == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "host": "127.0.0.1",
                        "port": int(os.environ.get("PEER_REDIS_PORT", "6379")),
                        # Above channels_redis's 5 s blocking read (django/channels_redis#422).
                        "socket_timeout": 15,
                    }
                ],
                "prefix": "bench-peer",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
