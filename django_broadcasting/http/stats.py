"""``GET /api/broadcast/stats``: what the server is doing, as JSON, for people and tools.

The document (see docs/operations.md for every field)::

    {"node": "web-1:4242", "generated_at": 1700000000.0, "driver": "websocket",
     "connections": 3, "channels": {"general": 2, "admin": 1}, "presence": {...},
     "presence_members": 0, "rates": {"messages_in": 1.5, "deliveries": 3.0, "frames_in": 0.2},
     "totals": {...}, "nodes": [{...one entry per server process...}],
     "apps": {"<app id>": {"connections", "channels", "subscriptions", "messages_in", "deliveries"}}}

The document is built by ``django_broadcasting.stats`` (``collect()``), shared with the admin
page and the CLI. Figures come from the hub of the process that answers (``hub.stats()``), plus, when the
Redis scale-out runs, the reports every other node keeps in Redis. Reading them costs the
hot path nothing: the hub only bumps integers, rates are derived here from two samples.

Access: a staff session, ``Authorization: Bearer <STATS_TOKEN>``, or the trigger signature
headers of an empty body (what ``manage.py broadcast stats`` sends). Anything else gets 401
(no credentials) or 403 (wrong ones).
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from ..conf import broadcasting_settings
from ..stats.document import (  # noqa: F401  (this module's older names)
    RATE_FIELDS,
    SUM_FIELDS,
    RateWindow,
    collect,
    has_cluster,
    local_node_stats,
    read,
    summarize,
)
from ..stats.remote import STATS_PATH  # noqa: F401
from .trigger import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def check_access(request: HttpRequest) -> JsonResponse | None:
    """None when the request may read stats; else the 401/403 response to return."""
    token = _bearer(request)
    expected = broadcasting_settings.STATS_TOKEN
    if token is not None:
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            return None
        return _refuse(403, "Invalid stats token.", "bad_token")
    timestamp, signature = request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)
    if timestamp or signature:
        problem = verify(b"", timestamp, signature)
        if problem is None:
            return None
        return _refuse(403, f"Request refused: {problem}.", problem.replace(" ", "_"))
    user = await request.auser() if hasattr(request, "auser") else getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if user.is_active and user.is_staff:
            return None
        return _refuse(403, "Staff access required.", "forbidden")
    return _refuse(
        401, "Authentication required: a staff session, a stats token or a signed request.", "unauthenticated"
    )


def _refuse(status: int, message: str, code: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="broadcast-stats"'
    return response


@require_GET
async def stats(request: HttpRequest) -> JsonResponse:
    """``GET /api/broadcast/stats``: the stats document (see the module docstring)."""
    refused = await check_access(request)
    if refused is not None:
        return refused
    response = JsonResponse(await collect(), json_dumps_params={"separators": (",", ":")})
    response["Cache-Control"] = "no-store"
    return response


#: Older names of ``django_broadcasting.stats.collect`` / ``read``.
acollect_stats = collect
get_stats = read
