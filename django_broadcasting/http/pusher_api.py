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

Several apps (``PUSHER_APPS``): ``{app_id}`` picks the app, whose key and secret must sign the
request; its channels are its own (``pusher_apps``). ``/users/{id}/terminate_connections``
without the prefix (the PyPI client's path) belongs to the app of its ``auth_key``.

Channel information and terminate_connections go through the default backend: with Redis they
cover every server process of the cluster, asked at the moment of the request
(``backends/redis/control.py``); otherwise this process's server.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from ..authorization import PRESENCE_NAMESPACE, canonical_name
from ..authorization import pusher_client_name as client_name
from ..backends.base import local_server
from ..conf import broadcasting_settings
from ..drivers import get_driver
from ..encryption import is_encrypted_channel, is_sealed
from ..exceptions import BroadcastError, InvalidMessage
from ..messages import Message, parse_json, utc_now_iso
from ..pusher_apps import PusherApp, app_by_id, app_by_key, default_app, unscoped
from ..pusher_signing import SOCKET_ID_RE, RequestRefused, verify_request
from .endpoint import (
    Endpoint,
    IngressRequest,
    IngressResponse,
    PublishRefused,
    TooManyFields,
    json_response,
    method_not_allowed,
    publish,
    text_response,
)

MAX_CHANNELS_PER_EVENT = 100
MAX_BATCH = 10
INFO_ATTRIBUTES = {"user_count", "subscription_count"}
EMPTY_OBJECT = IngressResponse(200, b"{}", "application/json")  # what most calls answer


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def signed(method: str) -> Callable[[Endpoint], Endpoint]:
    """Check the method, app id, size and signature before running the endpoint."""

    def decorator(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def wrapper(request: IngressRequest) -> IngressResponse:
            if request.method != method:
                return method_not_allowed(method, f"Method {request.method} not allowed; use {method}.")
            app_id = request.kwargs.get("app_id")
            if app_id is not None:
                app = app_by_id(app_id)
                if app is None:
                    return text_response(404, f"Unknown app_id {app_id[:40]!r}.")
            else:  # /users/{id}/terminate_connections: the app of the key that signed it
                app = app_by_key(str(request.query.get("auth_key", ""))) or default_app()
            request.app = app
            limit = broadcasting_settings.TRIGGER_MAX_BODY
            if request.declared_length > limit or len(request.body) > limit:
                return text_response(413, f"Request body larger than {limit} bytes.")
            try:
                verify_request(request.method, request.paths, request.query, request.body, app)
                return await endpoint(request)
            except (RequestRefused, ApiError) as exc:
                return text_response(exc.status, exc.message)
            except BroadcastError as exc:  # Redis unreachable while asking the other nodes
                return text_response(503, f"Cluster information unavailable: {exc.detail}")
            except TooManyFields as exc:
                return text_response(400, str(exc))
            except PublishRefused as exc:
                return text_response(503, str(exc))

        return wrapper

    return decorator


# -- helpers -----------------------------------------------------------------------------------
def _json_body(request: IngressRequest) -> dict[str, Any]:
    try:
        body = parse_json(request.body.decode() if request.body else "")  # str: no encoding sniffing
    except ValueError:
        raise ApiError(400, "Body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Body must be a JSON object.")
    return body


def _canonical(name: Any, app: PusherApp) -> str:
    """The hub name of the app's channel ``name`` (a Pusher or canonical name)."""
    try:
        return app.hub_name(canonical_name(name))
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


def _messages(event: dict[str, Any], channels: list[Any], timestamp: str, app: PusherApp) -> list[Message]:
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
        # Plain text: clients receive the string.
        parsed, data_json = data, json.dumps(data, ensure_ascii=False)
    canonicals = list(dict.fromkeys(_canonical(c, app) for c in channels))
    try:
        messages = [
            Message(c, name, parsed, data_json=data_json, socket_id=socket_id, timestamp=timestamp)
            for c in canonicals
        ]
    except InvalidMessage as exc:
        raise ApiError(400, exc.detail) from None
    if len(messages) > 1 and any(is_encrypted_channel(m.channel) for m in messages):
        # Each encrypted channel has its own key: one sealed payload can be opened on one channel only.
        raise ApiError(400, "An event for an encrypted channel must go to that channel alone.")
    for message in messages:
        if is_encrypted_channel(message.channel):
            # The server relays what the SDK sealed; it never sees, and never sends, plaintext there.
            if not is_sealed(parsed):
                raise ApiError(
                    400,
                    f"Events on encrypted channel {message.channel!r} must be encrypted: data is the "
                    'JSON {"nonce", "ciphertext"} (give the SDK encryption_master_key_base64).',
                )
            message.encrypted = True
    return messages


async def _channel_info(
    hub_name: str, attributes: set[str], counts: dict[str, int] | None = None
) -> dict[str, Any]:
    """``subscription_count`` / ``user_count`` of one channel, cluster-wide (``counts``: known already)."""
    backend = get_driver()
    info: dict[str, Any] = {}
    if "subscription_count" in attributes:
        if counts is None:
            counts = await backend.achannel_counts(hub_name)
        info["subscription_count"] = counts.get(hub_name, 0)
    if "user_count" in attributes and unscoped(hub_name).startswith(PRESENCE_NAMESPACE):
        info["user_count"] = len(await backend.apresence_members(hub_name))
    return info


async def _app_counts(app: PusherApp, attributes: set[str]) -> dict[str, int] | None:
    """Every node's subscriptions to the app's channels, when ``subscription_count`` is wanted."""
    return await get_driver().achannel_counts(app.namespace) if "subscription_count" in attributes else None


def _require_presence_for_user_count(attributes: set[str], name: str) -> None:
    if "user_count" in attributes and not name.startswith(("presence-", PRESENCE_NAMESPACE)):
        raise ApiError(400, "user_count is only available for presence channels.")


# -- endpoints -------------------------------------------------------------------------------------
@signed("POST")
async def events(request: IngressRequest) -> IngressResponse:
    body = _json_body(request)
    channels = body.get("channels")
    if channels is None and body.get("channel") is not None:
        channels = [body["channel"]]
    if not isinstance(channels, list) or not channels:
        raise ApiError(400, "Give 'channels' (a non-empty list) or 'channel'.")
    if len(channels) > MAX_CHANNELS_PER_EVENT:
        raise ApiError(400, f"An event may go to at most {MAX_CHANNELS_PER_EVENT} channels.")
    attributes = _info(body.get("info"))
    messages = _messages(body, channels, utc_now_iso(), request.app)
    await publish(messages, origin="api")
    if not attributes:
        return EMPTY_OBJECT
    counts = await _app_counts(request.app, attributes)
    return json_response(
        200,
        {
            "channels": {
                client_name(unscoped(m.channel)): await _channel_info(m.channel, attributes, counts)
                for m in messages
            }
        },
    )


@signed("POST")
async def batch_events(request: IngressRequest) -> IngressResponse:
    batch = _json_body(request).get("batch")
    if not isinstance(batch, list) or not batch:
        raise ApiError(400, "'batch' must be a non-empty list of events.")
    if len(batch) > MAX_BATCH:
        raise ApiError(400, f"A batch may hold at most {MAX_BATCH} events.")
    messages: list[Message] = []
    wanted: list[set[str]] = []
    timestamp = utc_now_iso()  # one request, one moment
    for event in batch:
        if not isinstance(event, dict) or not isinstance(event.get("channel"), str):
            raise ApiError(400, "Each batch event needs a 'channel' string.")
        wanted.append(_info(event.get("info")))
        messages.extend(_messages(event, [event["channel"]], timestamp, request.app))
    await publish(messages, origin="api")
    if not any(wanted):
        return EMPTY_OBJECT
    counts = await _app_counts(request.app, set().union(*wanted))
    return json_response(
        200,
        {"batch": [await _channel_info(m.channel, a, counts) for m, a in zip(messages, wanted, strict=True)]},
    )


@signed("GET")
async def channels(request: IngressRequest) -> IngressResponse:
    prefix = request.query.get("filter_by_prefix", "")
    attributes = _info(request.query.get("info"))
    _require_presence_for_user_count(attributes, prefix)
    app: PusherApp = request.app
    # Every node's occupied channels of this app (one question to the cluster, not one per channel).
    counts = await get_driver().achannel_counts(app.namespace)
    result = {}
    for hub_name in sorted(counts):
        if not app.owns(hub_name) or counts[hub_name] <= 0:
            continue
        canonical = unscoped(hub_name)
        if canonical.startswith("#"):
            continue  # reserved (server-to-user) channels are not listed
        name = client_name(canonical)
        if name.startswith(prefix) or canonical.startswith(prefix):
            result[name] = await _channel_info(hub_name, attributes, counts)
    return json_response(200, {"channels": result})


@signed("GET")
async def channel(request: IngressRequest) -> IngressResponse:
    hub_name = _canonical(request.kwargs["channel_name"], request.app)
    attributes = _info(request.query.get("info"))
    _require_presence_for_user_count(attributes, unscoped(hub_name))
    info = await _channel_info(hub_name, attributes | {"subscription_count"})
    occupied = info["subscription_count"] > 0
    if "subscription_count" not in attributes:
        del info["subscription_count"]
    return json_response(200, {"occupied": occupied, **info})


@signed("GET")
async def channel_users(request: IngressRequest) -> IngressResponse:
    hub_name = _canonical(request.kwargs["channel_name"], request.app)
    if not unscoped(hub_name).startswith(PRESENCE_NAMESPACE):
        raise ApiError(400, "Users are only available for presence channels.")
    members = await get_driver().apresence_members(hub_name)
    return json_response(200, {"users": [{"id": str(m["id"])} for m in members]})


@signed("POST")
async def terminate_connections(request: IngressRequest) -> IngressResponse:
    backend = get_driver()
    if backend.cluster_wide or local_server() is not None:
        await backend.aterminate_user(request.kwargs["user_id"], request.app.id)
    return json_response(200, {})
