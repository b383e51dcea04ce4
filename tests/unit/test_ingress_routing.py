"""Which requests the ASGI ingress takes: exactly those Django's URLconf routes to its views.

This module is also a URLconf (``urlpatterns`` below): a project that mounts the broadcasting
URLs under ``/bc/`` and routes one Pusher path to a view of its own.
"""

from __future__ import annotations

import asyncio
import json

from django.http import HttpResponse
from django.test import override_settings
from django.urls import include, path

from django_broadcasting.http import pusher_api, views
from django_broadcasting.http.endpoint import parse_query
from django_broadcasting.http.ingress import IngressApp, route
from tests.docs_blocks import python_blocks, run_block


def own_events(request, app_id):
    return HttpResponse("the project's own view")


urlpatterns = [
    path("bc/apps/<str:app_id>/events", own_events),  # before the include: the project's view wins
    path("bc/", include("django_broadcasting.http.urls")),
]

PREFIXED = override_settings(ROOT_URLCONF=__name__)


def scope(path: str, root_path: str = "", method: str = "POST") -> dict:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [],
    }


def test_root_mount_routes_every_ingress_url():
    assert route(scope("/apps/1/events")) == (pusher_api.events, {"app_id": "1"})
    assert route(scope("/apps/1/batch_events"))[0] is pusher_api.batch_events
    assert route(scope("/apps/1/channels"))[0] is pusher_api.channels
    assert route(scope("/apps/1/channels/presence-x"))[1] == {"app_id": "1", "channel_name": "presence-x"}
    assert route(scope("/apps/1/channels/presence-x/users"))[0] is pusher_api.channel_users
    assert route(scope("/apps/1/users/5/terminate_connections"))[0] is pusher_api.terminate_connections
    assert route(scope("/users/5/terminate_connections"))[1] == {"user_id": "5"}
    assert route(scope("/api/broadcast/events"))[0] is views.trigger


def test_other_paths_are_left_to_django():
    for other in (
        "/",
        "/admin/login/",
        "/broadcasting/auth",
        "/api/broadcast/stats",
        "/metrics",
        "/x/events",
    ):
        assert route(scope(other)) is None, other


def test_root_path_is_stripped_as_django_does():
    assert route(scope("/mounted/apps/1/events", root_path="/mounted"))[0] is pusher_api.events


@PREFIXED
def test_prefix_mount_is_followed_and_project_routes_win():
    assert route(scope("/apps/1/batch_events")) is None  # not mounted at the root here
    assert route(scope("/bc/apps/1/batch_events"))[0] is pusher_api.batch_events
    assert route(scope("/bc/api/broadcast/events"))[0] is views.trigger
    assert route(scope("/bc/apps/1/events")) is None  # the project's own view


async def test_ingress_app_answers_its_urls_and_passes_the_rest_on():
    passed = []

    async def django_app(scope, receive, send):
        passed.append(scope["path"])

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    app = IngressApp(django_app)
    await app(scope("/admin/"), receive, send)
    assert passed == ["/admin/"] and sent == []
    await app(scope("/apps/1/events", method="GET"), receive, send)
    assert passed == ["/admin/"]
    start, body = sent
    assert start["status"] == 405 and (b"allow", b"POST") in start["headers"]
    assert body["body"] == b"Method GET not allowed; use POST."
    sent.clear()
    await app(scope("/api/broadcast/events"), receive, send)
    assert sent[0]["status"] == 401
    assert json.loads(sent[1]["body"])["error"]["code"] == "unsigned"


def test_query_strings_parse_as_django_does():
    from django.http import QueryDict

    for query in ("a=1&b=2", "a=1&a=2", "a", "x=%20y+z&%41=b", "", "&&a=1&", "k=%E2%82%AC", "k=%ZZ", "=v"):
        assert parse_query(query) == QueryDict(query).dict(), query


def test_own_asgi_router_example_in_server_md_puts_the_ingress_first():
    from pathlib import Path

    from django_broadcasting.server.hub import reset_hub

    page = Path(__file__).resolve().parents[2] / "docs" / "server.md"
    [block] = [b for b in python_blocks(page) if "IngressApp" in b]
    namespace: dict = {}
    try:
        run_block(block, str(page), namespace)
    finally:
        reset_hub()  # the example's LifespanApp marks this process as serving
    router = namespace["application"].app
    assert isinstance(router.application_mapping["http"], IngressApp)
    assert router.application_mapping["http"].app is namespace["django_asgi_app"]


async def test_a_publish_sends_no_request_signals_and_hops_to_no_thread(settings, monkeypatch):
    """What the ingress skips: Django's request signals and sync_to_async; Django's own handler does both."""
    from urllib.parse import urlencode

    from asgiref.sync import SyncToAsync
    from django.core.asgi import get_asgi_application
    from django.core.signals import request_finished, request_started

    from django_broadcasting.drivers import memory
    from django_broadcasting.pusher_signing import get_app, sign_request

    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    memory.reset_outbox()
    signals, hops = [], []
    original_call = SyncToAsync.__call__

    async def counting_call(self, *args, **kwargs):
        hops.append(self.func)
        return await original_call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting_call)

    def on_signal(sender, **kwargs):
        signals.append(sender)

    request_started.connect(on_signal)
    request_finished.connect(on_signal)
    try:
        path = f"/apps/{get_app().id}/events"
        body = json.dumps({"name": "e", "channels": ["general"], "data": "{}"}).encode()
        request = scope(path)
        request["query_string"] = urlencode(sign_request("POST", path, body=body)).encode()
        request["headers"] = [(b"content-length", str(len(body)).encode())]
        sent = []

        async def send(message):
            sent.append(message)

        messages = []

        async def receive():
            if messages:  # after the body, a client that stays connected
                await asyncio.Event().wait()
            messages.append(body)
            return {"type": "http.request", "body": body, "more_body": False}

        django_app = get_asgi_application()
        await IngressApp(django_app)(dict(request), receive, send)
        assert sent[0]["status"] == 200 and sent[1]["body"] == b"{}"
        assert [m.event for m in memory.outbox] == ["e"]
        assert signals == [] and hops == []
        # The same request through Django's handler: the signals fire and sync code hops to a thread.
        sent.clear()
        messages.clear()
        await django_app(dict(request), receive, send)
        assert sent[0]["status"] == 200
        assert signals and hops
    finally:
        request_started.disconnect(on_signal)
        request_finished.disconnect(on_signal)
