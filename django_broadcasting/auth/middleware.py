"""ASGI middleware that puts an ``Identity`` into every WebSocket scope, or refuses the handshake.

Order of sources (the first one present wins):

1. ``?auth_token=<jwt>`` in the query string;
2. an ``Authorization: Bearer <jwt>`` header (servers, mobile apps, CLI tools);
3. the WebSocket subprotocol: the client offers ``["broadcasting", "bearer.<jwt>"]``; the
   consumer accepts with ``scope["broadcasting_subprotocol"]`` (``"broadcasting"``) so the
   token is never echoed back in the response headers;
4. the Django session cookie (``SESSION_AUTH``, on by default), as Channels'
   ``AuthMiddlewareStack`` does; ``scope["user"]`` is set as well.

A token that is present but does not verify refuses the handshake (HTTP 403): the client
asked to be someone and is not, so it is never downgraded to anonymous. So does a browser
``Origin`` that is not allowed: ``CORS_ALLOWED_ORIGINS`` entries (``scheme://host[:port]``,
``scheme://*.example.com`` or ``"*"``), or, when that list is empty, origins whose host is in
``ALLOWED_HOSTS`` (like Channels' ``AllowedHostsOriginValidator``). Clients that send no
``Origin`` are let through unless ``REQUIRE_ORIGIN`` is on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings

from ..conf import broadcasting_settings
from ..exceptions import AuthenticationFailed, TokenExpired
from ..server import codes
from .identity import ANONYMOUS, Identity, _bearer_token, identity_for_user
from .jwt import decode_token

logger = logging.getLogger("django_broadcasting.auth")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SCOPE_IDENTITY = "broadcasting_identity"
SCOPE_SUBPROTOCOL = "broadcasting_subprotocol"
SUBPROTOCOL = "broadcasting"
SUBPROTOCOL_TOKEN_PREFIX = "bearer."
# Close codes given to a refused handshake. Real clients only see the HTTP 403; in-process
# clients (channels.testing.WebsocketCommunicator) see the code.
ORIGIN_FORBIDDEN_CODE = codes.WS_1008_POLICY_VIOLATION
UNAUTHORIZED_CODE = codes.CLOSE_4001_UNAUTHORIZED
TOKEN_EXPIRED_CODE = codes.CLOSE_4011_TOKEN_EXPIRED

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _query_token(scope: Scope) -> str | None:
    query = scope.get("query_string", b"")
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    values = parse_qs(query).get("auth_token")
    return values[0] if values else None


def subprotocol_token(subprotocols: Iterable[str]) -> str | None:
    """Return the token offered as a ``bearer.<jwt>`` subprotocol, else None."""
    for protocol in subprotocols:
        if protocol.startswith(SUBPROTOCOL_TOKEN_PREFIX):
            return protocol[len(SUBPROTOCOL_TOKEN_PREFIX) :] or None
    return None


def token_from_scope(scope: Scope) -> str | None:
    """Return the JWT of a WebSocket scope: query string, then Bearer header, then subprotocol."""
    return (
        _query_token(scope)
        or _bearer_token(_header(scope, b"authorization"))
        or subprotocol_token(scope.get("subprotocols") or ())
    )


def _normalise_origin(origin: str) -> tuple[str, str, int | None] | None:
    """Return (scheme, host, port) of an origin with default ports filled in, or None."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS.get(parts.scheme)


def _origin_matches(origin: tuple[str, str, int | None], allowed: str) -> bool:
    if allowed.strip() == "*":
        return True
    wildcard = "://*." in allowed
    candidate = _normalise_origin(allowed.replace("://*.", "://", 1) if wildcard else allowed)
    if candidate is None:
        return False
    scheme, host, port = candidate
    if origin[0] != scheme or origin[2] != port:
        return False
    if wildcard:  # "*.example.com" covers subdomains, not example.com itself
        return origin[1].endswith("." + host)
    return origin[1] == host


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        # What Django's runserver allows in that case.
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def origin_allowed(origin: str | None) -> bool:
    """Return True when a handshake with this ``Origin`` header value may proceed."""
    if origin is None:
        return not broadcasting_settings.REQUIRE_ORIGIN
    allowed = broadcasting_settings.CORS_ALLOWED_ORIGINS
    if "*" in allowed:
        return True
    parsed = _normalise_origin(origin)
    if parsed is None:  # "null" (sandboxed iframes, file://) or garbage
        return "null" in allowed and origin.strip() == "null"
    if allowed:
        return any(_origin_matches(parsed, entry) for entry in allowed)
    from django.http.request import split_domain_port, validate_host

    domain, _ = split_domain_port(urlsplit(origin.strip().lower()).netloc)
    return bool(domain) and validate_host(domain, _allowed_hosts())


async def deny_handshake(receive: Receive, send: Send, code: int = UNAUTHORIZED_CODE) -> None:
    """Refuse a WebSocket handshake: servers answer a close before accept with HTTP 403."""
    message = await receive()
    if message.get("type") == "websocket.connect":
        await send({"type": "websocket.close", "code": code})


def _session_identity(scope: Scope) -> tuple[Any, Identity]:
    """Load the session user and its identity in one trip to the database thread."""
    from django.contrib.auth import get_user
    from django.contrib.auth.models import AnonymousUser

    session = scope.get("session")
    if session is None or not getattr(session, "session_key", None):
        return AnonymousUser(), ANONYMOUS
    # django.contrib.auth.get_user only needs request.session (and verifies the session hash).
    user = get_user(SimpleNamespace(session=session))
    return user, identity_for_user(user)


class BroadcastAuthMiddleware:
    """Resolve ``scope["broadcasting_identity"]`` for WebSocket scopes; other scopes pass through."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return await self.inner(scope, receive, send)

        if not origin_allowed(_header(scope, b"origin")):
            logger.warning("WebSocket refused: origin %r not allowed", _header(scope, b"origin"))
            return await deny_handshake(receive, send, ORIGIN_FORBIDDEN_CODE)

        offered = list(scope.get("subprotocols") or ())
        scope = dict(scope)
        scope[SCOPE_SUBPROTOCOL] = SUBPROTOCOL if SUBPROTOCOL in offered else None

        token = token_from_scope(scope)
        if token is not None:
            try:
                identity = decode_token(token)
            except AuthenticationFailed as exc:
                logger.warning("WebSocket refused: %s", exc.detail)
                code = TOKEN_EXPIRED_CODE if isinstance(exc, TokenExpired) else UNAUTHORIZED_CODE
                return await deny_handshake(receive, send, code)
        elif broadcasting_settings.SESSION_AUTH and "session" in scope:
            user = scope.get("user")
            if user is not None and not _is_lazy(user):
                # Already resolved by Channels' AuthMiddleware: reuse it.
                identity = await database_sync_to_async(identity_for_user)(user)
            else:
                user, identity = await database_sync_to_async(_session_identity)(scope)
                scope["user"] = user
        else:
            identity = ANONYMOUS

        scope[SCOPE_IDENTITY] = identity
        return await self.inner(scope, receive, send)


def _is_lazy(user: Any) -> bool:
    from django.utils.functional import LazyObject, empty

    return isinstance(user, LazyObject) and user._wrapped is empty


class _SessionWhenNeeded:
    """Run the cookie and session middleware only for sockets that may need the session.

    A socket that brings a token, or no cookie at all, never reads the session: skipping the
    two middleware saves their per-socket wrappers and scope copies (~2 KiB a connection,
    see docs/performance.md) and their work at every handshake.
    """

    def __init__(self, inner: ASGIApp) -> None:
        from channels.sessions import CookieMiddleware, SessionMiddleware

        self.direct = BroadcastAuthMiddleware(inner)
        self.with_session = CookieMiddleware(SessionMiddleware(self.direct))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and (
            _header(scope, b"cookie") is None or token_from_scope(scope) is not None
        ):
            return await self.direct(scope, receive, send)
        return await self.with_session(scope, receive, send)


def BroadcastAuthMiddlewareStack(inner: ASGIApp) -> ASGIApp:  # noqa: N802 (Channels' naming)
    """Return ``inner`` wrapped in cookie, session and broadcasting auth middleware.

    Use it instead of Channels' ``AuthMiddlewareStack``: the session user is loaded only for
    connections that carry no token, and ``scope["user"]`` is set as Channels would.
    """
    return _SessionWhenNeeded(inner)
