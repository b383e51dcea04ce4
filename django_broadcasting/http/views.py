"""HTTP views of the broadcasting server (the trigger API; stats and metrics live beside it)."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..authorization import canonical_name
from ..conf import broadcasting_settings
from ..exceptions import BroadcastError
from ..messages import Message, parse_json
from ..metrics import observe_broadcast
from ..server.hub import get_hub
from .trigger import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


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


@csrf_exempt
@require_POST
async def trigger(request: HttpRequest) -> JsonResponse:
    """Accept a signed broadcast and publish it as if it came from this process."""
    limit = broadcasting_settings.TRIGGER_MAX_BODY
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return error(413, f"Body larger than {limit} bytes.", "too_large")
    body = request.body
    if len(body) > limit:
        return error(413, f"Body larger than {limit} bytes.", "too_large")
    problem = verify(body, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER))
    if problem == "missing signature":
        return error(401, "Signed request required.", "unsigned")
    if problem:
        return error(403, f"Request refused: {problem}.", problem.replace(" ", "_"))
    try:
        messages = _messages_from(parse_json(body))
    except (ValueError, BroadcastError) as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        return error(400, detail, "invalid")
    hub = get_hub()
    await hub.start()
    started = perf_counter()
    await hub.relay(messages)
    observe_broadcast(perf_counter() - started, "trigger")
    return JsonResponse({"ok": True, "messages": len(messages)}, status=202)
