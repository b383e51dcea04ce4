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
``Origin`` that is not allowed (``check_origin``, docs/authentication.md "Origin policy"): the
request's own origin (scheme, host and port of its ``Host``, when that Host passes
``ALLOWED_HOSTS``; forwarded host and scheme only when ``USE_X_FORWARDED_HOST`` /
``SECURE_PROXY_SSL_HEADER`` say so, as Django's CSRF check reads them) is always allowed;
``CORS_ALLOWED_ORIGINS`` entries (``scheme://host[:port]``, ``scheme://*.example.com`` or ``"*"``)
and Django's ``CSRF_TRUSTED_ORIGINS`` add others; when ``CORS_ALLOWED_ORIGINS`` is empty, origins
whose host is in ``ALLOWED_HOSTS`` are allowed too (like Channels'
``AllowedHostsOriginValidator``). Clients that send no ``Origin`` are let through unless
``REQUIRE_ORIGIN`` is on. A refusal is logged at WARNING with the origin, the host it was
compared with and the setting to change.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from asgiref.sync import markcoroutinefunction
from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..conf import broadcasting_settings
from ..core import codes
from ..exceptions import AuthenticationFailed, TokenExpired
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


def _joined_header(scope: Scope, name: bytes) -> str | None:
    """Return every value of a header joined with commas, as Django's ``request.META`` holds it."""
    values = [value.decode("latin-1") for key, value in scope.get("headers", ()) if key.lower() == name]
    return ",".join(values) if values else None


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


Origin = tuple[str, str, int | None]


# A pure function of a few distinct strings (the allowed entries, each page's origin and host), called
# several times per handshake: a bounded cache keeps it off the handshake's cost.
@functools.lru_cache(maxsize=512)
def _normalise_origin(origin: str, *, strict: bool = False) -> Origin | None:
    """Return (scheme, host, port) of an origin with default ports filled in, or None.

    ``strict`` is for the ``Origin`` header itself: browsers send exactly ``scheme://host[:port]``,
    so a value with user info, a path, a query or a fragment is not an origin at all.
    """
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:  # "http://127.0.0.1:8000.evil.example": not a port
        return None
    if not parts.scheme or not parts.hostname:
        return None
    if strict and ("@" in parts.netloc or parts.path or parts.query or parts.fragment):
        return None
    return parts.scheme, parts.hostname, port if port is not None else _DEFAULT_PORTS.get(parts.scheme)


def _origin_matches(origin: Origin, allowed: str) -> bool:
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


def _csrf_trusted(origin: str, parsed: Origin) -> bool:
    """Return True for an origin that Django's CSRF check trusts through ``CSRF_TRUSTED_ORIGINS``.

    Exact entries compare as ``CORS_ALLOWED_ORIGINS`` entries do (case and default ports
    normalised); ``scheme://*.example.com`` covers example.com and its subdomains, as Django
    reads it.
    """
    from django.utils.http import is_same_domain

    netloc = urlsplit(origin.strip().lower()).netloc
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in entry:
            parts = urlsplit(entry.strip())
            if parts.scheme.lower() == parsed[0] and is_same_domain(netloc, parts.netloc.lstrip("*")):
                return True
        elif _origin_matches(parsed, entry):
            return True
    return False


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        # What Django's runserver allows in that case.
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


# -- the request's own origin (what Django's CSRF check calls the "good origin") -----------------
def _request_scheme(scope: Scope) -> str:
    """Return the scheme Django's ``request.scheme`` would give this handshake (ws -> http, wss -> https).

    Behind a proxy that terminates TLS, ``SECURE_PROXY_SSL_HEADER`` names the header that tells;
    it is only read when that setting is set, as Django does. A scope without ``scheme`` is
    ``ws`` (the ASGI default); daphne leaves it out, see ``auth/daphne_scope.py``.
    """
    if settings.SECURE_PROXY_SSL_HEADER:
        try:
            meta_key, secure_value = settings.SECURE_PROXY_SSL_HEADER
        except ValueError:
            raise ImproperlyConfigured(
                "The SECURE_PROXY_SSL_HEADER setting must be a tuple containing two values."
            ) from None
        # request.META names ("HTTP_X_FORWARDED_PROTO") come from the dashed header names only:
        # Django drops headers spelt with underscores, so matching the dashed form is the same rule.
        if meta_key.startswith("HTTP_"):
            value = _joined_header(scope, meta_key[5:].lower().replace("_", "-").encode("latin-1"))
            if value is not None:
                return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme", "ws") in ("wss", "https") else "http"


def _request_host(scope: Scope) -> str | None:
    """Return the host the handshake was addressed to, unvalidated (Django's ``_get_raw_host``).

    ``X-Forwarded-Host`` only under ``USE_X_FORWARDED_HOST``; otherwise the ``Host`` header, which
    RFC 6455 requires of every handshake (None when a client left it out).
    """
    if settings.USE_X_FORWARDED_HOST:
        forwarded = _joined_header(scope, b"x-forwarded-host")
        if forwarded is not None:
            return forwarded
    return _joined_header(scope, b"host")


def _host_allowed(host: str) -> bool:
    """Return True when ``host`` passes ``ALLOWED_HOSTS`` as Django's ``request.get_host()`` checks it.

    Deliberately Django's own rule (``"*"`` included), not the Origin fall-back's host list: a
    Host that Django serves pages on is that site's host.
    """
    from django.http.request import split_domain_port, validate_host

    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts)


# -- the policy ------------------------------------------------------------------------------------
NO_ORIGIN = "no Origin"
SAME_ORIGIN = "same origin"
LISTED = "CORS_ALLOWED_ORIGINS"
CSRF_TRUSTED = "CSRF_TRUSTED_ORIGINS"
ALLOWED_HOSTS_FALLBACK = "ALLOWED_HOSTS"
REFUSED = "refused"

_SHOWN_MAX = 200  # header values in log lines are cut: a client chooses their length


def _shown(value: str | None) -> str:
    if value is None:
        return "none"
    return repr(value if len(value) <= _SHOWN_MAX else value[:_SHOWN_MAX] + "...")


@dataclass(frozen=True)
class OriginCheck:
    """The Origin policy's verdict on one handshake, and what a log line about it needs.

    ``rule`` names the row of the policy that decided (``SAME_ORIGIN``, ``LISTED``, ...);
    ``host`` is the Host (or trusted forwarded host) the Origin was compared with and
    ``own_origin`` the ``scheme://host`` built from it; ``reason`` says, for a refusal, why and
    which setting to change.
    """

    allowed: bool
    rule: str
    origin: str | None = None
    host: str | None = None
    own_origin: str | None = None
    reason: str = ""

    def describe(self) -> str:
        """Return the one-line explanation logged for a refused handshake."""
        return f"WebSocket refused (HTTP 403): {self.reason}"


_NO_ORIGIN_ALLOWED = OriginCheck(True, NO_ORIGIN)  # immutable: one verdict serves every such handshake


def check_origin(
    origin: str | None, scope: Scope | None = None, allowed: tuple[str, ...] | None = None
) -> OriginCheck:
    """Apply the Origin policy to a handshake's ``Origin`` header value (``scope`` gives its Host).

    In order: no Origin (allowed unless ``REQUIRE_ORIGIN``); ``"*"`` listed; the request's own
    origin (scheme, host and port of the Host it was sent to, when that Host is in
    ``ALLOWED_HOSTS``); ``CORS_ALLOWED_ORIGINS``; ``CSRF_TRUSTED_ORIGINS``; with an empty
    ``CORS_ALLOWED_ORIGINS``, an origin whose host is in ``ALLOWED_HOSTS``. Anything else is refused.
    Without ``scope`` there is no same-origin row. ``allowed`` replaces ``CORS_ALLOWED_ORIGINS``
    (a Pusher app's ``allowed_origins``, see ``app_origins``).
    """
    if origin is None and not broadcasting_settings.REQUIRE_ORIGIN:
        return _NO_ORIGIN_ALLOWED  # the common non-browser case: nothing to compare
    host = _request_host(scope) if scope is not None else None
    scheme = _request_scheme(scope) if scope is not None else "http"
    own_origin = f"{scheme}://{host}" if host is not None else None

    def verdict(allowed: bool, rule: str, reason: str = "") -> OriginCheck:
        return OriginCheck(allowed, rule, origin, host, own_origin, reason)

    if origin is None:  # and REQUIRE_ORIGIN is on
        return verdict(
            False,
            REFUSED,
            f"no Origin header (Host {_shown(host)}) and REQUIRE_ORIGIN is on; turn it off "
            "(BROADCASTING['REQUIRE_ORIGIN'] or BROADCAST_REQUIRE_ORIGIN) to let clients that "
            "send none connect",
        )
    if allowed is None:
        allowed = broadcasting_settings.CORS_ALLOWED_ORIGINS
    if "*" in allowed:
        return verdict(True, LISTED)
    parsed = _normalise_origin(origin, strict=True)
    if parsed is None:  # "null" (sandboxed iframes, file://) or garbage
        if origin.strip() == "null":
            if "null" in allowed:
                return verdict(True, LISTED)
            return verdict(
                False,
                REFUSED,
                f"Origin 'null' (a sandboxed frame or a file:// page; Host {_shown(host)}); add "
                '"null" to CORS_ALLOWED_ORIGINS to allow it',
            )
        return verdict(
            False,
            REFUSED,
            f"Origin {_shown(origin)} is not a scheme://host[:port] origin (Host {_shown(host)})",
        )

    host_ok = host is not None and _host_allowed(host)
    if host_ok and parsed == _normalise_origin(f"{scheme}://{host}"):
        return verdict(True, SAME_ORIGIN)
    if any(_origin_matches(parsed, entry) for entry in allowed):
        return verdict(True, LISTED)
    if _csrf_trusted(origin, parsed):
        return verdict(True, CSRF_TRUSTED)
    if not allowed:
        from django.http.request import split_domain_port, validate_host

        domain, _ = split_domain_port(urlsplit(origin.strip().lower()).netloc)
        if domain and validate_host(domain, _allowed_hosts()):
            return verdict(True, ALLOWED_HOSTS_FALLBACK)

    if host is None:
        reason = (
            f"Origin {_shown(origin)} is not in CORS_ALLOWED_ORIGINS and the handshake has no Host "
            "header to compare it with; add it to CORS_ALLOWED_ORIGINS to allow it"
        )
    elif not host_ok:
        reason = (
            f"Origin {_shown(origin)} is not in CORS_ALLOWED_ORIGINS, and Host {_shown(host)} is not "
            "in ALLOWED_HOSTS, so the request has no trusted own origin to match; add the host to "
            "ALLOWED_HOSTS if it is this site's, or the origin to CORS_ALLOWED_ORIGINS"
        )
    else:
        reason = (
            f"Origin {_shown(origin)} is neither this site's own origin {_shown(own_origin)} "
            f"(Host {_shown(host)}) nor in CORS_ALLOWED_ORIGINS; add it to CORS_ALLOWED_ORIGINS "
            "to allow it"
        )
    if not allowed:
        reason += " (the list is empty, so hosts in ALLOWED_HOSTS pass too; listing origins ends that)"
    return verdict(False, REFUSED, reason)


def _pusher_app(scope: Scope) -> Any:
    """The Pusher app of a ``/app/{key}`` handshake (its own ``allowed_origins`` apply), or None."""
    path: str = scope.get("path", "")
    head, sep, key = path.rstrip("/").rpartition("/app/")
    if not sep or not key or "/" in key:
        return None
    from ..pusher_apps import app_by_key

    return app_by_key(key)


def origin_allowed(origin: str | None, scope: Scope | None = None) -> bool:
    """Return True when a handshake with this ``Origin`` header value may proceed."""
    return check_origin(origin, scope).allowed


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
        # Under daphne, WebSocket scopes only say "wss" once this is applied (origin policy).
        from .daphne_scope import report_websocket_scheme

        report_websocket_scheme()

    @markcoroutinefunction
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Returns the inner app's coroutine when the identity is known without I/O (a token, or
        # none): no coroutine of this layer stays alive for the socket's lifetime.
        if scope["type"] != "websocket":
            return self.inner(scope, receive, send)

        origin = _joined_header(scope, b"origin")
        app = _pusher_app(scope) if origin is not None else None
        if app is not None and app.allowed_origins is not None:
            check = check_origin(origin, scope, app.allowed_origins)
            if not check.allowed:
                reason = check.reason.replace(LISTED, f"the allowed_origins of Pusher app {app.id!r}")
                check = OriginCheck(False, check.rule, check.origin, check.host, check.own_origin, reason)
        else:
            check = check_origin(origin, scope)
        if not check.allowed:
            logger.warning("%s", check.describe())
            return deny_handshake(receive, send, ORIGIN_FORBIDDEN_CODE)

        offered = scope.get("subprotocols") or ()
        scope = dict(scope)
        scope[SCOPE_SUBPROTOCOL] = SUBPROTOCOL if SUBPROTOCOL in offered else None

        token = token_from_scope(scope)
        if token is not None:
            try:
                identity = decode_token(token)
            except AuthenticationFailed as exc:
                logger.warning("WebSocket refused: %s", exc.detail)
                code = TOKEN_EXPIRED_CODE if isinstance(exc, TokenExpired) else UNAUTHORIZED_CODE
                return deny_handshake(receive, send, code)
        elif broadcasting_settings.SESSION_AUTH and "session" in scope:
            return self._with_session(scope, receive, send)
        else:
            identity = ANONYMOUS

        scope[SCOPE_IDENTITY] = identity
        return self.inner(scope, receive, send)

    async def _with_session(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The identity of the Django session user (a trip to the database thread), then the app."""
        user = scope.get("user")
        if user is not None and not _is_lazy(user):
            # Already resolved by Channels' AuthMiddleware: reuse it.
            identity = await database_sync_to_async(identity_for_user)(user)
        else:
            user, identity = await database_sync_to_async(_session_identity)(scope)
            scope["user"] = user
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

    @markcoroutinefunction
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket" and (
            _header(scope, b"cookie") is None or token_from_scope(scope) is not None
        ):
            return self.direct(scope, receive, send)
        return self.with_session(scope, receive, send)


def BroadcastAuthMiddlewareStack(inner: ASGIApp) -> ASGIApp:  # noqa: N802 (Channels' naming)
    """Return ``inner`` wrapped in cookie, session and broadcasting auth middleware.

    Use it instead of Channels' ``AuthMiddlewareStack``: the session user is loaded only for
    connections that carry no token, and ``scope["user"]`` is set as Channels would.
    """
    return _SessionWhenNeeded(inner)
