"""Token refresh for browser clients: ``GET /broadcasting/token``.

A page rendered with ``{% broadcasting_client %}`` holds a short-lived token. When the server
says that token has expired (error code 4011), the JavaScript client calls its refresh
callback, which fetches this endpoint with the page's session cookie and gets a fresh token
for the same logged-in user. The response is never cached, and the token is readable only by
same-origin scripts (no CORS headers are added here), so a third-party page cannot obtain one.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..auth.jwt import token_for_user
from ..conf import broadcasting_settings


def mint_client_token(user) -> tuple[str, int]:
    """Return ``(token, ttl)``: a token for ``user`` valid for ``CLIENT_TOKEN_TTL`` seconds."""
    ttl = broadcasting_settings.CLIENT_TOKEN_TTL
    return token_for_user(user, ttl=ttl), ttl


# Minting changes no state, so the CSRF check would only get in the way of clients that POST.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def token(request: HttpRequest) -> JsonResponse:
    """Return ``{"token", "expires_in"}`` for the session's user; 401 when nobody is logged in."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return JsonResponse(
            {"error": {"code": "unauthenticated", "message": "Log in to get a broadcasting token."}},
            status=401,
        )
    value, ttl = mint_client_token(user)
    return JsonResponse({"token": value, "expires_in": ttl})
