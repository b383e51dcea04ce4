"""A WSGI process (wsgiref) whose view publishes a broadcast: ``python wsgi_publisher.py PORT``.

It stands for a classic WSGI deployment (gunicorn, mod_wsgi) next to the ASGI server.
"""

from __future__ import annotations

import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

urlpatterns: list = []


def publish(request):
    from django_broadcasting import broadcast

    broadcast().channel("general").event("from_wsgi").with_data({"path": request.path}).send()
    return HttpResponse("published")


def main() -> None:
    django.setup()
    settings.ROOT_URLCONF = __name__
    urlpatterns.append(path("publish", publish))
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", int(sys.argv[1]), get_wsgi_application(), handler_class=Quiet)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
