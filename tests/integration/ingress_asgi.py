"""A project whose own ``asgi.py`` serves HTTP with Django alone: every request goes through
Django's handler and middleware, so the broadcasting URLs are answered by their Django views."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.ingress_settings")

django_only = get_asgi_application()
