"""The signed trigger endpoint, and the Django views of every publish-ingress endpoint (was ``http/views.py``).

``trigger`` is the endpoint (see ``http.endpoint``): it verifies the signature, builds the
messages, and publishes them. The Django views at the bottom are thin adapters over the
endpoints, for projects that route these URLs through Django (``urls.py``); the
composition root (``django_broadcasting.asgi``) answers the same URLs before Django does.
"""

from __future__ import annotations

from collections.abc import Sequence
from time import perf_counter
from typing import Any

from ..authorization import canonical_name
from ..conf import broadcasting_settings
from ..discovery import EXPECT_HOST_HEADER, EXPECT_PROJECT_HEADER, refusal, server_identity
from ..encryption import EncryptionNotConfigured, seal_messages
from ..exceptions import BroadcastError
from ..messages import Message, parse_json
from ..metrics import observe_broadcast
from . import pusher_api
from .endpoint import (
    IngressRequest,
    IngressResponse,
    PublishRefused,
    django_view,
    json_response,
    method_not_allowed,
    publish,
)
from .trigger import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

_TIMESTAMP = TIMESTAMP_HEADER.lower()
_SIGNATURE = SIGNATURE_HEADER.lower()
_EXPECT_PROJECT = EXPECT_PROJECT_HEADER.lower()
_EXPECT_HOST = EXPECT_HOST_HEADER.lower()


def error(status: int, message: str, code: str) -> IngressResponse:
    return json_response(status, {"error": {"code": code, "message": message}})


def accepted(messages: Sequence[Message]) -> IngressResponse:
    """The trigger's answer once ``messages`` are published (202): how many, and which server took them."""
    return json_response(202, {"ok": True, "messages": len(messages), "server": server_identity()})


def _messages_from(body: Any) -> list[Message]:
    if not isinstance(body, dict):
        raise BroadcastError("Body must be a JSON object.")
    if "messages" in body:
        items = body["messages"]
        if not isinstance(items, list) or not items:
            raise BroadcastError("'messages' must be a non-empty list.")
        return [Message.from_transport(item) if isinstance(item, dict) else _bad() for item in items]
    channels = body.get("channels") or ([body["channel"]] if body.get("channel") else None)
    if not isinstance(channels, list) or not channels:
        raise BroadcastError("Give 'channel' or 'channels'.")
    if not all(isinstance(name, str) for name in channels):
        raise BroadcastError("Channel names must be strings.")
    # One channel, one name: "private-orders.1" is "orders.1", "presence-chat.1" is "presence.chat.1".
    names = [canonical_name(name) for name in channels]
    return Message.for_channels(names, body.get("event"), body.get("data"), socket_id=body.get("socket_id"))


def _bad() -> Message:
    raise BroadcastError("Each message must be an object.")


async def trigger(request: IngressRequest) -> IngressResponse:
    """Accept a signed broadcast and publish it as if it came from this process."""
    if request.method != "POST":
        return method_not_allowed("POST")
    limit = broadcasting_settings.TRIGGER_MAX_BODY
    if request.declared_length > limit or len(request.body) > limit:
        return error(413, f"Body larger than {limit} bytes.", "too_large")
    body = request.body
    problem = verify(body, request.headers.get(_TIMESTAMP), request.headers.get(_SIGNATURE))
    if problem == "missing signature":
        return error(401, "Signed request required.", "unsigned")
    if problem:
        return error(403, f"Request refused: {problem}.", problem.replace(" ", "_"))
    wrong = refusal(request.headers.get(_EXPECT_PROJECT), request.headers.get(_EXPECT_HOST))
    if wrong is not None:  # the publisher meant another project's server: deliver nothing
        return json_response(409, wrong)
    try:
        messages = _messages_from(parse_json(body))
    except (ValueError, BroadcastError) as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        return error(400, detail, "invalid")
    try:
        messages = seal_messages(messages)  # plain events for encrypted channels are sealed here
    except EncryptionNotConfigured as exc:
        return error(400, str(exc), "encryption_not_configured")
    started = perf_counter()
    try:
        await publish(messages, server=True)
    except PublishRefused as exc:  # e.g. an encrypted channel on a server without a master key
        return error(503, str(exc), "refused")
    observe_broadcast(perf_counter() - started, "trigger")
    return accepted(messages)


# -- Django views (thin adapters over the endpoints) ---------------------------------------------
trigger_view = django_view(trigger)
pusher_events = django_view(pusher_api.events)
pusher_batch_events = django_view(pusher_api.batch_events)
pusher_channels = django_view(pusher_api.channels)
pusher_channel = django_view(pusher_api.channel)
pusher_channel_users = django_view(pusher_api.channel_users)
pusher_terminate_connections = django_view(pusher_api.terminate_connections)
