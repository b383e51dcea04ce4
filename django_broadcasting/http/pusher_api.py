"""The Pusher HTTP API, so Pusher server SDKs (PyPI ``pusher``, Laravel's pusher driver) publish here.

=================================================================  ===================================
``POST /apps/{app_id}/events``                                     one event to up to 100 channels
``POST /apps/{app_id}/batch_events``                               up to 10 events
``GET  /apps/{app_id}/channels``                                   occupied channels (``filter_by_prefix``, ``info``)
``GET  /apps/{app_id}/channels/{name}``                            one channel (``info=user_count,subscription_count``)
``GET  /apps/{app_id}/channels/{name}/users``                      a presence channel's user ids
``POST /apps/{app_id}/users/{user_id}/terminate_connections``      close a user's sockets
=================================================================  ===================================

Every request is signed (``auth_key``, ``auth_timestamp`` within 600 s, ``auth_version`` 1.0,
``body_md5``, ``auth_signature``; see ``pusher_signing``). Answers follow Pusher: 400 for a bad
request, 401 for a bad signature, 404 for another app id, 413 for a body or payload that is
too large; errors are plain text. Channel names may be Pusher names (``private-user.5``) or
canonical ones (``user.5``): both reach the same subscribers, native and Pusher alike.

Channel information comes from this process's hub (presence counts from the presence store,
cluster-wide when Redis is used); terminate_connections closes this process's sockets.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..authorization import PRESENCE_NAMESPACE, canonical_name
from ..conf import broadcasting_settings
from ..exceptions import BroadcastError, InvalidMessage
from ..messages import Message, parse_json
from ..pusher_signing import SOCKET_ID_RE, RequestRefused, get_app, verify_request
from ..server.hub import get_hub
from ..server.protocols.pusher import client_name

MAX_CHANNELS_PER_EVENT = 100
MAX_BATCH = 10
INFO_ATTRIBUTES = {"user_count", "subscription_count"}

View = Callable[..., Awaitable[HttpResponse]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _paths(request: HttpRequest) -> tuple[str, ...]:
    """The request path as the client may have signed it: decoded, and raw from the server."""
    paths = [request.path]
    raw = getattr(request, "scope", {}).get("raw_path") if hasattr(request, "scope") else None
    if isinstance(raw, bytes):
        paths.append(raw.decode("latin-1").split("?", 1)[0])
    for key in ("RAW_URI", "REQUEST_URI"):
        if request.META.get(key):
            paths.append(request.META[key].split("?", 1)[0])
    return tuple(paths)


def signed(method: str) -> Callable[[View], View]:
    """Check the method, app id, size and signature before running the API view."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, app_id: str | None = None, **kwargs: Any) -> HttpResponse:
            if request.method != method:
                response = _text(405, f"Method {request.method} not allowed; use {method}.")
                response["Allow"] = method
                return response
            app = get_app()
            if app_id is not None and app_id != app.id:
                return _text(404, f"Unknown app_id {app_id[:40]!r}.")
            limit = broadcasting_settings.TRIGGER_MAX_BODY
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit or len(request.body) > limit:
                return _text(413, f"Request body larger than {limit} bytes.")
            try:
                verify_request(request.method, _paths(request), request.GET.dict(), request.body, app)
                return await view(request, **kwargs)
            except RequestRefused as exc:
                return _text(exc.status, exc.message)
            except ApiError as exc:
                return _text(exc.status, exc.message)

        return csrf_exempt(wrapper)

    return decorator


# -- helpers -----------------------------------------------------------------------------------
def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = parse_json(request.body or b"")
    except ValueError:
        raise ApiError(400, "Body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Body must be a JSON object.")
    return body


def _canonical(name: Any) -> str:
    try:
        return canonical_name(name)
    except BroadcastError as exc:
        raise ApiError(400, f"Invalid channel name {str(name)[:80]!r}: {exc.detail}") from None


def _info(value: Any) -> set[str]:
    if value in (None, ""):
        return set()
    if not isinstance(value, str):
        raise ApiError(400, "info must be a comma-separated string.")
    attributes = {part.strip() for part in value.split(",") if part.strip()}
    unknown = attributes - INFO_ATTRIBUTES
    if unknown:
        raise ApiError(400, f"Unknown info attribute(s): {', '.join(sorted(unknown))}.")
    return attributes


def _messages(event: dict[str, Any], channels: list[Any]) -> list[Message]:
    name = event.get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "Event 'name' is required.")
    data = event.get("data", "")
    if not isinstance(data, str):
        data = json.dumps(data, separators=(",", ":"))  # lenient: an object instead of its JSON
    limit = broadcasting_settings.MAX_PAYLOAD_SIZE
    if len(data.encode()) > limit:
        raise ApiError(413, f"Event data is larger than {limit} bytes.")
    socket_id = event.get("socket_id")
    if socket_id is not None and (not isinstance(socket_id, str) or not SOCKET_ID_RE.match(socket_id)):
        raise ApiError(400, "socket_id must look like '123.456'.")
    try:
        parsed, data_json = parse_json(data), data
    except ValueError:
        parsed, data_json = data, None  # plain text: clients receive the string
    canonicals = list(dict.fromkeys(_canonical(c) for c in channels))
    try:
        return [Message(c, name, parsed, data_json=data_json, socket_id=socket_id) for c in canonicals]
    except InvalidMessage as exc:
        raise ApiError(400, exc.detail) from None


async def _publish(messages: list[Message]) -> None:
    hub = get_hub()
    if hub.serving:
        await hub.start()
        await hub.relay(messages)
        return
    from ..drivers import get_driver
    from ..drivers.pusher import PusherDriver

    driver = get_driver()
    if isinstance(driver, PusherDriver):  # it would post straight back here
        raise ApiError(503, "This process does not serve WebSockets and its default driver is 'pusher'.")
    await driver.abroadcast(messages)


async def _channel_info(canonical: str, attributes: set[str]) -> dict[str, Any]:
    hub = get_hub()
    info: dict[str, Any] = {}
    if "subscription_count" in attributes:
        info["subscription_count"] = len(hub.subscribers.get(canonical, ()))
    if "user_count" in attributes and canonical.startswith(PRESENCE_NAMESPACE):
        info["user_count"] = len(await hub.members(canonical))
    return info


def _require_presence_for_user_count(attributes: set[str], name: str) -> None:
    if "user_count" in attributes and not name.startswith(("presence-", PRESENCE_NAMESPACE)):
        raise ApiError(400, "user_count is only available for presence channels.")


# -- views -------------------------------------------------------------------------------------
@signed("POST")
async def events(request: HttpRequest) -> HttpResponse:
    body = _json_body(request)
    channels = body.get("channels")
    if channels is None and body.get("channel") is not None:
        channels = [body["channel"]]
    if not isinstance(channels, list) or not channels:
        raise ApiError(400, "Give 'channels' (a non-empty list) or 'channel'.")
    if len(channels) > MAX_CHANNELS_PER_EVENT:
        raise ApiError(400, f"An event may go to at most {MAX_CHANNELS_PER_EVENT} channels.")
    attributes = _info(body.get("info"))
    messages = _messages(body, channels)
    await _publish(messages)
    if not attributes:
        return JsonResponse({})
    return JsonResponse(
        {"channels": {client_name(m.channel): await _channel_info(m.channel, attributes) for m in messages}}
    )


@signed("POST")
async def batch_events(request: HttpRequest) -> HttpResponse:
    batch = _json_body(request).get("batch")
    if not isinstance(batch, list) or not batch:
        raise ApiError(400, "'batch' must be a non-empty list of events.")
    if len(batch) > MAX_BATCH:
        raise ApiError(400, f"A batch may hold at most {MAX_BATCH} events.")
    messages: list[Message] = []
    wanted: list[set[str]] = []
    for event in batch:
        if not isinstance(event, dict) or not isinstance(event.get("channel"), str):
            raise ApiError(400, "Each batch event needs a 'channel' string.")
        wanted.append(_info(event.get("info")))
        messages.extend(_messages(event, [event["channel"]]))
    await _publish(messages)
    if not any(wanted):
        return JsonResponse({})
    return JsonResponse(
        {"batch": [await _channel_info(m.channel, a) for m, a in zip(messages, wanted, strict=True)]}
    )


@signed("GET")
async def channels(request: HttpRequest) -> HttpResponse:
    prefix = request.GET.get("filter_by_prefix", "")
    attributes = _info(request.GET.get("info"))
    _require_presence_for_user_count(attributes, prefix)
    result = {}
    for canonical in list(get_hub().subscribers):
        if canonical.startswith("#"):
            continue  # reserved (server-to-user) channels are not listed
        name = client_name(canonical)
        if name.startswith(prefix) or canonical.startswith(prefix):
            result[name] = await _channel_info(canonical, attributes)
    return JsonResponse({"channels": result})


@signed("GET")
async def channel(request: HttpRequest, channel_name: str) -> HttpResponse:
    canonical = _canonical(channel_name)
    attributes = _info(request.GET.get("info"))
    _require_presence_for_user_count(attributes, canonical)
    info = await _channel_info(canonical, attributes | {"subscription_count"})
    occupied = info["subscription_count"] > 0
    if "subscription_count" not in attributes:
        del info["subscription_count"]
    return JsonResponse({"occupied": occupied, **info})


@signed("GET")
async def channel_users(request: HttpRequest, channel_name: str) -> HttpResponse:
    canonical = _canonical(channel_name)
    if not canonical.startswith(PRESENCE_NAMESPACE):
        raise ApiError(400, "Users are only available for presence channels.")
    members = await get_hub().members(canonical)
    return JsonResponse({"users": [{"id": str(m["id"])} for m in members]})


@signed("POST")
async def terminate_connections(request: HttpRequest, user_id: str) -> HttpResponse:
    from ..server.pusher_connection import terminate_user_connections

    await terminate_user_connections(user_id)
    return JsonResponse({})
