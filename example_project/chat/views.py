"""Views of the example chat: the room list, a room, and posting a message."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .events import ChatMessageEvent
from .models import Message, Room

MAX_MESSAGE_LENGTH = 2000
HISTORY = 50


@login_required
def room_list(request: HttpRequest) -> HttpResponse:
    """List the rooms; a POST with ``name`` creates one (or opens it if it exists)."""
    error = None
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name or len(name) > 80:
            error = "A room name is 1 to 80 characters."
        else:
            room, _ = Room.objects.get_or_create(name=name)
            return redirect("chat:room", room_id=room.pk)
    if not Room.objects.exists():
        Room.objects.get_or_create(name="Lobby")
    return render(request, "chat/room_list.html", {"rooms": Room.objects.all(), "error": error})


@login_required
def room(request: HttpRequest, room_id: int) -> HttpResponse:
    """Show a room: its recent messages, who is online, and the form that posts messages."""
    room = get_object_or_404(Room, pk=room_id)
    recent = list(room.messages.select_related("user").order_by("-created_at", "-pk")[:HISTORY])[::-1]
    return render(
        request,
        "chat/room.html",
        {"room": room, "messages_json": [m.to_json() for m in recent]},
    )


@login_required
@require_POST
def post_message(request: HttpRequest, room_id: int) -> JsonResponse:
    """Save a message, then broadcast ``ChatMessage`` on the room's channel once it is committed.

    Body: JSON ``{"message": "..."}`` or a form field ``message``. The sender's own socket (the
    ``X-Socket-ID`` header) is skipped: its page shows the message from this response.
    """
    room = get_object_or_404(Room, pk=room_id)
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"error": "Malformed JSON."}, status=400)
        text = body.get("message") if isinstance(body, dict) else None
    else:
        text = request.POST.get("message")
    if not isinstance(text, str) or not text.strip():
        return JsonResponse({"error": "A message cannot be empty."}, status=400)
    if len(text) > MAX_MESSAGE_LENGTH:
        return JsonResponse({"error": f"A message is at most {MAX_MESSAGE_LENGTH} characters."}, status=400)
    with transaction.atomic():
        message = Message.objects.create(room=room, user=request.user, body=text.strip())
        # Queued until commit (after_commit = True on the event).
        ChatMessageEvent(message).to_others().dispatch()
    return JsonResponse(message.to_json(), status=201)
