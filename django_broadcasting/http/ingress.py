"""The publish ingress at the ASGI level: the Pusher HTTP API and the signed trigger, before Django.

``IngressApp(django_asgi_app)`` sits in the composition root (``django_broadcasting.asgi``) in
front of Django's HTTP application. A request whose path Django's URLconf routes to one of the
ingress views (``django_broadcasting.http.urls``, at the root or under any prefix) is answered
here by the same endpoint function the view runs (see ``http.endpoint``), without Django's
handler: no middleware, no ``sync_to_async`` thread hop, no ``request_started`` /
``request_finished`` signals, no ``HttpRequest``. Every other request goes to Django unchanged,
so a project that routes these paths to its own views keeps them, and one that does not include
``urls.py`` at all gets no ingress (Django answers 404).

Where Django would route a path is worked out once per path with ``django.urls.resolve`` and
cached (bounded; cleared when settings change). Only paths ending like an ingress URL are looked
up, so the rest of the site pays one string test per request.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.urls import Resolver404, resolve

from .endpoint import Endpoint, IngressRequest, IngressResponse, body_limit, text_response

logger = logging.getLogger("django_broadcasting.http")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: Last path segments of the ingress URLs (``/apps/{id}/channels/{name}`` ends in a channel name,
#: so a path whose second-to-last segment is ``channels`` is looked up too).
_TAILS = frozenset({"events", "batch_events", "channels", "users", "terminate_connections"})
_ROUTE_CACHE_SIZE = 1024


class Disconnected(Exception):
    """The client went away before its request body arrived."""


@functools.lru_cache(maxsize=_ROUTE_CACHE_SIZE)
def _resolve(path_info: str) -> tuple[Endpoint, Mapping[str, str]] | None:
    try:
        match = resolve(path_info)
    except Resolver404:
        return None
    endpoint = getattr(match.func, "ingress_endpoint", None)
    if endpoint is None or match.args:
        return None
    return endpoint, dict(match.kwargs)


def route(scope: Scope) -> tuple[Endpoint, Mapping[str, str]] | None:
    """Return the endpoint and path parameters Django's URLconf gives this request, or None."""
    path: str = scope["path"]
    # As Django's ASGIRequest: the script prefix is FORCE_SCRIPT_NAME or the scope's root_path.
    script = settings.FORCE_SCRIPT_NAME or scope.get("root_path") or ""
    path_info = path.removeprefix(script) if script else path
    head, _, last = path_info.rpartition("/")
    if last not in _TAILS and not head.endswith("/channels"):
        return None
    return _resolve(path_info)


def _clear_routes(**kwargs: Any) -> None:
    _resolve.cache_clear()


setting_changed.connect(_clear_routes, dispatch_uid="django_broadcasting.http.ingress.routes")


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read the request body, stopping once it is longer than ``limit`` (one byte over is kept)."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False) or len(body) > limit:
        return body
    chunks = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(send: Send, response: IngressResponse) -> None:
    """Write ``response`` as one ``http.response.start`` and one ``http.response.body`` message."""
    headers = [(b"content-length", str(len(response.body)).encode())]
    if response.content_type:
        headers.append((b"content-type", response.content_type.encode("latin-1")))
    headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers
    )
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


class IngressApp:
    """ASGI HTTP application answering the ingress URLs and passing every other request to ``app``."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = route(scope)
            if found is not None:
                await self.serve(found[0], found[1], scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def serve(
        self, endpoint: Endpoint, kwargs: Mapping[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Read the request, run ``endpoint``, and send its answer."""
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        path: str = scope["path"]
        raw = scope.get("raw_path")
        paths = (path,) if not raw else tuple(dict.fromkeys((path, raw.decode("latin-1").split("?", 1)[0])))
        request = IngressRequest(
            method=scope["method"],
            paths=paths,
            kwargs=kwargs,
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=b"",
        )
        try:
            limit = body_limit()
            # A declared length over the limit is refused without reading the body; the endpoint
            # sees the declared length and answers 413, as it does behind Django.
            if request.declared_length <= limit:
                request.body = await read_body(receive, limit)
            response = await endpoint(request)
        except Disconnected:
            return
        except Exception:
            logger.exception("ingress endpoint %s failed on %s %s", endpoint.__name__, scope["method"], path)
            response = text_response(500, "Internal Server Error")
        await send_response(send, response)
