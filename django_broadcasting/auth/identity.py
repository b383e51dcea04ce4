"""Who is on the other end of a connection or request: the ``Identity`` value.

An ``Identity`` is built once per WebSocket connection (by the ASGI middleware) or per HTTP
request (by ``identity_from_request``), from a JWT or from the Django session, and handed to
every channel authorization rule. It is a frozen value: authorization never mutates it, and
the server can read ``expires_at`` to close or refresh a connection whose token has expired.

Roles for Django users (session auth and ``token_for_user``) are derived the same way
everywhere, in ``roles_for_user``: ``"staff"`` and ``"admin"`` for staff users, ``"superuser"``
and ``"admin"`` for superusers, plus the names of the user's groups.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async

if TYPE_CHECKING:
    from django.http import HttpRequest

_EMPTY_CLAIMS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Identity:
    """The authenticated (or anonymous) party of a connection.

    ``user_id`` is ``None`` for anonymous visitors and otherwise always a string: the JWT
    ``sub`` claim, or ``str(user.pk)`` for session users. ``claims`` holds the verified JWT
    claims (empty for session auth); ``user`` holds the Django user for session auth (for JWT
    identities load it with ``aget_user``).
    """

    user_id: str | None = None
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    # Mappings and users are not hashable; leave them out of hash() but keep them in ==.
    claims: Mapping[str, Any] = field(default_factory=lambda: _EMPTY_CLAIMS, hash=False)
    user: Any = field(default=None, hash=False, repr=False)
    expires_at: float | None = None

    def __post_init__(self) -> None:
        # Normalise what callers pass so rules can rely on the types (frozen: set via object).
        if self.user_id is not None and not isinstance(self.user_id, str):
            object.__setattr__(self, "user_id", str(self.user_id))
        if not isinstance(self.roles, frozenset):
            object.__setattr__(self, "roles", frozenset(self.roles))
        if not isinstance(self.permissions, frozenset):
            object.__setattr__(self, "permissions", frozenset(self.permissions))
        if not isinstance(self.claims, MappingProxyType):
            object.__setattr__(self, "claims", MappingProxyType(dict(self.claims)))

    @property
    def is_authenticated(self) -> bool:
        """Return True when the identity names a user (a valid token or a logged-in session)."""
        return self.user_id is not None

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    @property
    def name(self) -> str | None:
        """Return a display name: the JWT ``name`` claim, else the Django user's full name or username."""
        claim = self.claims.get("name")
        if isinstance(claim, str) and claim:
            return claim
        user = self.user
        if user is not None and getattr(user, "is_authenticated", False):
            full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
            return full_name or user.get_username()
        return None

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_permission(self, permission: str) -> bool:
        return permission in self.permissions

    def is_expired(self, now: float | None = None, leeway: float = 0.0) -> bool:
        """Return True when the token behind this identity has expired (never for session auth)."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) > self.expires_at + leeway


ANONYMOUS = Identity()


def roles_for_user(user: Any) -> frozenset[str]:
    """Return the roles of a Django user: staff/superuser flags mapped to roles, plus group names.

    Runs a query for the groups, so call it from sync code (or through ``sync_to_async``).
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    roles: set[str] = set()
    if getattr(user, "is_staff", False):
        roles.update(("staff", "admin"))
    if getattr(user, "is_superuser", False):
        roles.update(("superuser", "admin"))
    groups = getattr(user, "groups", None)
    if groups is not None and hasattr(groups, "values_list"):
        roles.update(groups.values_list("name", flat=True))
    return frozenset(roles)


def identity_for_user(user: Any) -> Identity:
    """Return the ``Identity`` of a Django user (``ANONYMOUS`` for ``None``/``AnonymousUser``).

    Queries the user's groups; call from sync code or use ``aidentity_for_user``.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    return Identity(user_id=str(user.pk), roles=roles_for_user(user), user=user)


async def aidentity_for_user(user: Any) -> Identity:
    """Async twin of ``identity_for_user`` (the group query runs in the database thread)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    return await database_sync_to_async(identity_for_user)(user)


def _user_by_id(user_id: str) -> Any:
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ValidationError

    model = get_user_model()
    try:
        return model._default_manager.filter(pk=user_id).first()
    except (ValueError, TypeError, ValidationError):
        # A "sub" that is not a valid primary key for this user model (e.g. "abc" for an int pk).
        return None


async def aget_user(identity: Identity) -> Any:
    """Return the Django user behind ``identity``, or ``None``.

    Session identities carry their user already; for JWT identities the user is looked up by
    primary key (``sub``), so tokens minted by another service whose ``sub`` is not a local
    user id simply give ``None``.
    """
    if identity.user is not None:
        return identity.user
    if identity.user_id is None:
        return None
    return await database_sync_to_async(_user_by_id)(identity.user_id)


def get_user(identity: Identity) -> Any:
    """Sync twin of ``aget_user`` for sync rules and views."""
    if identity.user is not None:
        return identity.user
    if identity.user_id is None:
        return None
    return _user_by_id(identity.user_id)


def _bearer_token(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def identity_from_request(request: HttpRequest) -> Identity:
    """Return the identity of an HTTP request: a Bearer JWT, else the session user, else anonymous.

    A Bearer token that does not verify raises ``AuthenticationFailed``/``TokenExpired`` (views
    answer 401/403): a client that sends a bad token is told so instead of silently being
    treated as anonymous.
    """
    from ..conf import broadcasting_settings
    from .jwt import decode_token

    token = _bearer_token(request.headers.get("Authorization"))
    if token is not None:
        return decode_token(token)
    if broadcasting_settings.SESSION_AUTH:
        return identity_for_user(getattr(request, "user", None))
    return ANONYMOUS


async def aidentity_from_request(request: HttpRequest) -> Identity:
    """Async twin of ``identity_from_request`` for async views (uses ``request.auser()``)."""
    from ..conf import broadcasting_settings
    from .jwt import decode_token

    token = _bearer_token(request.headers.get("Authorization"))
    if token is not None:
        return decode_token(token)
    if broadcasting_settings.SESSION_AUTH and hasattr(request, "auser"):
        return await aidentity_for_user(await request.auser())
    return ANONYMOUS
