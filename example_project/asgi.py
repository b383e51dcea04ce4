"""ASGI entry point of the example project (``daphne example_project.asgi:application``).

It re-exports django-broadcasting's ready application (HTTP + WebSocket routing). The
settings module is set before the import because that module sets up Django.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

from django_broadcasting.asgi import application  # noqa: E402

__all__ = ["application"]
