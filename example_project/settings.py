"""Settings for the example project (also the settings the test suite runs with).

The embedded default needs no service: the in-memory channel layer and SQLite. Set
``BROADCAST_CHANNEL_LAYER=redis`` to use ``channels_redis``'s ``RedisChannelLayer`` instead, or
``redis-pubsub`` for its ``RedisPubSubChannelLayer`` (host, port and database from
``BROADCAST_REDIS_HOST`` / ``BROADCAST_REDIS_PORT`` / ``BROADCAST_REDIS_DATABASE``).

``BROADCASTING`` below deliberately leaves out every key that has an environment fall-back
(``BROADCAST_*``, ``JWT_SECRET``, ``CORS_ALLOWED_ORIGINS``, ``PUSHER_APP_*``):
``django_broadcasting.conf`` reads those from the environment itself, so
``JWT_SECRET=... python manage.py runserver`` uses that secret.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-example-project-dev-key-change-me-in-production"
)
DEBUG = _env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = (
    ["*"]
    if DEBUG
    else [
        host.strip()
        for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
        if host.strip()
    ]
)

INSTALLED_APPS = [
    # daphne first: it replaces runserver with an ASGI (WebSocket-capable) one.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_broadcasting",
    # The example site: chat (presence, whispers, after-commit broadcasts) and the rest of the
    # demo (sign-up, notifications, live dashboard).
    "example_project.chat",
    "example_project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Keeps the X-Socket-ID header for broadcast(...).to_others() / event.to_others().
    "django_broadcasting.middleware.SocketIdMiddleware",
]

ROOT_URLCONF = "example_project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "example_project" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DATABASE_PATH") or BASE_DIR / "db.sqlite3",
        # Server processes and test processes may share one file: wait for locks instead of failing.
        "OPTIONS": {"timeout": 20},
    }
}

if os.environ.get("BROADCAST_CHANNEL_LAYER", "").strip().lower() == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": "redis://{}:{}/{}".format(
                            os.environ.get("BROADCAST_REDIS_HOST", "127.0.0.1"),
                            os.environ.get("BROADCAST_REDIS_PORT", "6379"),
                            os.environ.get("BROADCAST_REDIS_DATABASE", "0"),
                        ),
                        # Above channels_redis's 5 s blocking read (django/channels_redis#422).
                        "socket_timeout": 15,
                    }
                ],
                "prefix": os.environ.get("BROADCAST_CHANNEL_LAYER_PREFIX", "asgi"),
                # Each server process has one layer channel that receives every broadcast for
                # its sockets, so it needs more room than the per-socket default of 100.
                "capacity": 10000,
            },
        }
    }
elif os.environ.get("BROADCAST_CHANNEL_LAYER", "").strip().lower() == "redis-pubsub":
    # channels_redis's pub/sub layer: also one group member per server process.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    "redis://{}:{}/{}".format(
                        os.environ.get("BROADCAST_REDIS_HOST", "127.0.0.1"),
                        os.environ.get("BROADCAST_REDIS_PORT", "6379"),
                        os.environ.get("BROADCAST_REDIS_DATABASE", "0"),
                    )
                ],
                "prefix": os.environ.get("BROADCAST_CHANNEL_LAYER_PREFIX", "asgi"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Keys with an environment fall-back are left out on purpose (see the module docstring).
BROADCASTING: dict = {}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)-8s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django_broadcasting": {
            "handlers": ["console"],
            "level": os.environ.get("BROADCAST_LOG_LEVEL", "INFO"),
            # daphne also configures the root logger: without this, every line prints twice.
            "propagate": False,
        },
    },
}
