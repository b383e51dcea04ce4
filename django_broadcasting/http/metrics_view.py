"""``GET /metrics``: the Prometheus text exposition of this process (prometheus-client).

Open by default, as exporters usually are. With ``METRICS_TOKEN`` set
(``BROADCAST_METRICS_TOKEN``), a scrape needs ``Authorization: Bearer <token>``: 401
without one, 403 with a wrong one. The metric list is in docs/operations.md.
"""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..conf import broadcasting_settings
from ..metrics import registry


def _refuse(status: int, message: str, code: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
async def metrics(request: HttpRequest) -> HttpResponse:
    """Serve the metrics; collected in the server's event loop, where the hub lives."""
    expected = broadcasting_settings.METRICS_TOKEN
    if expected:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _refuse(401, "Bearer token required.", "unauthenticated")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return _refuse(403, "Invalid metrics token.", "bad_token")
    response = HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
