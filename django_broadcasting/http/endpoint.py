"""The request and response of the publish ingress, shared by its ASGI handler and its Django views.

The Pusher HTTP API and the signed trigger are written once, as *endpoints*: async functions
from an ``IngressRequest`` (method, path spellings, path parameters, query string, headers,
body) to an ``IngressResponse`` (status, headers, body). Nothing in them touches Django's
request machinery, so two front doors run the same code:

* ``http.ingress.IngressApp``, the lean ASGI handler the composition root puts before
  Django (no middleware, no thread hop, no ``request_started``);
* ``django_view(endpoint)``, a thin Django view for projects that only include ``urls.py``
  (or mount it where the ASGI handler does not look).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from django.http import HttpRequest, HttpResponse
from django.utils.functional import cached_property  # no lock per first access (functools takes one on 3.11)
from django.views.decorators.csrf import csrf_exempt

from ..conf import broadcasting_settings
from ..core.serving import hub_or_none
from ..drivers import get_driver
from ..drivers.pusher import PusherDriver
from ..encryption import EncryptionNotConfigured, seal_messages
from ..messages import Message
from ..publishing import apublish

#: Query parameters beyond this are refused (Django's ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` default).
MAX_QUERY_FIELDS = 1000


class TooManyFields(Exception):
    """The query string holds more than ``MAX_QUERY_FIELDS`` parameters."""


def parse_query(query_string: str) -> dict[str, str]:
    """Parse a query string as ``QueryDict(...).dict()`` does (blank values kept, last one wins).

    Only pieces with ``%`` or ``+`` go through ``unquote_plus``: signed API requests are
    mostly plain ``key=value`` pairs, and this runs on every one of them.
    """
    if not query_string:
        return {}
    pieces = [piece for piece in query_string.split("&") if piece]
    if len(pieces) > MAX_QUERY_FIELDS:
        raise TooManyFields(f"More than {MAX_QUERY_FIELDS} query parameters.")
    params: dict[str, str] = {}
    for piece in pieces:
        name, _, value = piece.partition("=")
        if "%" in piece or "+" in piece:
            name = unquote_plus(name, errors="replace")
            value = unquote_plus(value, errors="replace")
        params[name] = value
    return params


@dataclass(eq=False)
class IngressRequest:
    """One HTTP request to an ingress endpoint, free of any server or framework object.

    ``paths`` are the spellings of the request path a client may have signed (decoded, and
    raw as it came over the wire); ``kwargs`` the path parameters (``app_id``, ...);
    ``headers`` has lower-case names. ``body`` is what was read, which is at most one byte
    more than the endpoint's limit (or empty when the declared length was already too large).
    """

    method: str
    paths: tuple[str, ...]
    kwargs: Mapping[str, str]
    query_string: str
    headers: Mapping[str, str]
    body: bytes
    #: The Pusher app the request was signed for, once the Pusher HTTP API has checked it.
    app: Any = None

    @cached_property
    def query(self) -> dict[str, str]:
        """The query parameters (the last value of a repeated name wins, as ``QueryDict.dict()``)."""
        return parse_query(self.query_string)

    @property
    def declared_length(self) -> int:
        """The ``Content-Length`` the client declared (0 when absent or not a number)."""
        try:
            return int(self.headers.get("content-length") or 0)
        except ValueError:
            return 0


@dataclass(frozen=True, eq=False)
class IngressResponse:
    """Status, headers (besides ``Content-Length``) and body of an endpoint's answer."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


Endpoint = Callable[[IngressRequest], Awaitable[IngressResponse]]


def text_response(status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> IngressResponse:
    """A plain-text answer (the Pusher HTTP API's errors)."""
    return IngressResponse(status, message.encode(), "text/plain; charset=utf-8", tuple(headers))


def json_response(status: int, data: Any) -> IngressResponse:
    """A JSON answer, spelled as Django's ``JsonResponse`` spells it."""
    return IngressResponse(status, json.dumps(data).encode(), "application/json")


def method_not_allowed(allowed: str, body: str = "") -> IngressResponse:
    """405 with ``Allow``; an empty body is what Django's ``require_POST`` answers."""
    if body:
        return text_response(405, body, [("Allow", allowed)])
    return IngressResponse(405, b"", "text/html; charset=utf-8", (("Allow", allowed),))


async def publish(messages: Sequence[Message], *, server: bool = False, origin: str | None = None) -> None:
    """Hand messages received over HTTP to the backend: one call per request (a batch is one call).

    In a serving process the hub is started first (under daphne nothing else may have done it
    yet), so its transport and history see the messages; ``server=True`` (the trigger, which is
    the server's own way in) starts it in any process. A server whose backend has a transport
    (Redis, a channel layer) publishes through it, so every node gets the messages; a single
    server delivers them to its own sockets, whatever its default driver (a default ``pusher``
    driver would otherwise post them straight back to this API, a ``log`` one swallow them).
    """
    # Plain events for encrypted channels (the trigger's channel/event/data form) are sealed here;
    # what arrives sealed (Pusher SDKs, this project's publishers) is relayed as it is.
    try:
        messages = seal_messages(messages)
    except EncryptionNotConfigured as exc:
        raise PublishRefused(str(exc)) from None
    if origin is not None:  # the admin console's label of where a broadcast came from
        for message in messages:
            if message.origin is None:
                message.origin = origin
    hub = hub_or_none(load=server)
    if hub is not None and (server or hub.serving):
        await hub.start()
    if hub is not None and hub.serving and hub.transport is None:
        await hub.relay(messages)
        return
    if isinstance(get_driver(), PusherDriver):
        raise PublishRefused("This process does not serve WebSockets and its default driver is 'pusher'.")
    await apublish(messages)


class PublishRefused(Exception):
    """This process cannot take the messages (answered 503)."""


# -- the Django front door ----------------------------------------------------------------------
def _paths(request: HttpRequest) -> tuple[str, ...]:
    """The request path as the client may have signed it: decoded, and raw from the server."""
    paths = [request.path]
    scope = getattr(request, "scope", None)
    raw = scope.get("raw_path") if isinstance(scope, dict) else None
    if isinstance(raw, bytes):
        paths.append(raw.decode("latin-1").split("?", 1)[0])
    for key in ("RAW_URI", "REQUEST_URI"):
        if request.META.get(key):
            paths.append(request.META[key].split("?", 1)[0])
    return tuple(dict.fromkeys(paths))


def body_limit() -> int:
    """The largest body an ingress endpoint reads: ``TRIGGER_MAX_BODY``."""
    return broadcasting_settings.TRIGGER_MAX_BODY


def django_view(endpoint: Endpoint) -> Callable[..., Awaitable[HttpResponse]]:
    """Return a Django view running ``endpoint`` (CSRF-exempt: requests are signed).

    The body is read only when the declared length is within ``body_limit()``; over it the endpoint
    sees an empty body and the declared length, and answers 413 itself, as the ASGI path does.
    The view carries ``endpoint`` as ``ingress_endpoint``, which is how ``IngressApp`` finds it.
    """

    async def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        headers = {name.lower(): value for name, value in request.headers.items()}
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        ingress_request = IngressRequest(
            method=request.method or "GET",
            paths=_paths(request),
            kwargs=kwargs,
            query_string=request.META.get("QUERY_STRING", ""),
            headers=headers,
            body=request.body if declared <= body_limit() else b"",
        )
        answer = await endpoint(ingress_request)
        response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
        for name, value in answer.headers:
            response[name] = value
        return response

    view.__name__ = view.__qualname__ = endpoint.__name__
    view.__doc__ = endpoint.__doc__
    view.__module__ = endpoint.__module__
    wrapped = csrf_exempt(view)
    wrapped.ingress_endpoint = endpoint  # type: ignore[attr-defined]
    return wrapped
