"""JSON Web Tokens for WebSocket and API clients, through PyJWT.

Tokens carry the claims: ``sub`` (the user id), ``aud`` (``"websocket"``, a string or
a list), ``exp``, ``iat``, ``roles`` and ``permissions``; any other claim (``name``, ``teams``,
``orgs`` ...) is kept in ``Identity.claims``.

Keys and algorithms come from the ``BROADCASTING`` settings, read on every call:

* ``JWT_ALGORITHMS`` is an allow-list (default ``("HS256",)``). A token whose header names an
  algorithm outside it is refused; ``"none"`` can never be allowed (configuring it raises
  ``ImproperlyConfigured``). Tokens are minted with the first algorithm of the list.
* HMAC algorithms (``HS*``) use ``JWT_SECRET``, falling back to ``settings.SECRET_KEY``.
* RSA/EC/EdDSA algorithms verify with ``JWT_PUBLIC_KEY`` and sign with ``JWT_PRIVATE_KEY``
  (PEM text, or a path to a PEM file). The key is chosen by the token's algorithm family, so
  an HMAC token can never be checked against a public key (algorithm confusion).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jwt as pyjwt
from django.conf import settings

from ..conf import broadcasting_settings
from ..exceptions import AuthenticationFailed, BroadcastingImproperlyConfigured, TokenExpired
from .identity import Identity, roles_for_user

# Tokens travel in URLs and headers; anything this long is not one of ours.
MAX_TOKEN_LENGTH = 8192

_HMAC_PREFIX = "HS"


@functools.cache
def _known_algorithms() -> frozenset[str]:
    return frozenset(pyjwt.algorithms.get_default_algorithms())


def _allowed_algorithms() -> tuple[str, ...]:
    """Return the validated allow-list, raising ImproperlyConfigured for an unsafe one."""
    algorithms = tuple(broadcasting_settings.JWT_ALGORITHMS)
    if not algorithms:
        raise BroadcastingImproperlyConfigured("BROADCASTING['JWT_ALGORITHMS'] must not be empty.")
    known = _known_algorithms()
    for name in algorithms:
        if name.lower() == "none":
            raise BroadcastingImproperlyConfigured(
                "BROADCASTING['JWT_ALGORITHMS'] must not contain 'none': unsigned tokens are never accepted."
            )
        if name not in known:
            raise BroadcastingImproperlyConfigured(
                f"BROADCASTING['JWT_ALGORITHMS']: unknown algorithm {name!r} "
                f"(choose from {', '.join(sorted(a for a in known if a != 'none'))})."
            )
    return algorithms


def _hmac_secret() -> str:
    secret = broadcasting_settings.JWT_SECRET or getattr(settings, "SECRET_KEY", None)
    if not secret:
        raise BroadcastingImproperlyConfigured(
            "Set BROADCASTING['JWT_SECRET'] (or the JWT_SECRET environment variable) to use HS* tokens."
        )
    return secret


def _read_pem(value: str) -> str:
    """Return PEM text given either the PEM itself or a path to a file holding it."""
    text = value.strip()
    if "-----BEGIN" in text:
        # Environment variables often carry the PEM with literal "\n" sequences.
        return text.replace("\\n", "\n") if "\n" not in text else text
    path = Path(text).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise BroadcastingImproperlyConfigured(
            f"JWT key {text[:60]!r} is neither PEM text nor a readable file: {exc}."
        ) from None


@functools.lru_cache(maxsize=16)
def _prepared_key(algorithm: str, value: str) -> Any:
    """Return the parsed key object for ``algorithm``: PEM parsing costs more than verifying.

    Keyed by the setting's value, so a changed setting is a new cache entry (no reset needed).
    """
    try:
        return pyjwt.get_algorithm_by_name(algorithm).prepare_key(_read_pem(value))
    except (ValueError, TypeError, pyjwt.InvalidKeyError) as exc:
        raise BroadcastingImproperlyConfigured(f"JWT key for {algorithm} cannot be loaded: {exc}") from None


def _verification_key(algorithm: str) -> Any:
    if algorithm.startswith(_HMAC_PREFIX):
        return _hmac_secret()
    key = broadcasting_settings.JWT_PUBLIC_KEY
    if not key:
        raise BroadcastingImproperlyConfigured(
            f"BROADCASTING['JWT_ALGORITHMS'] allows {algorithm} but BROADCASTING['JWT_PUBLIC_KEY'] is not set."
        )
    return _prepared_key(algorithm, key)


def _signing_key(algorithm: str) -> Any:
    if algorithm.startswith(_HMAC_PREFIX):
        return _hmac_secret()
    key = broadcasting_settings.JWT_PRIVATE_KEY
    if not key:
        raise BroadcastingImproperlyConfigured(
            f"Minting {algorithm} tokens needs BROADCASTING['JWT_PRIVATE_KEY'] (PEM text or a file path)."
        )
    return _prepared_key(algorithm, key)


def validate_jwt_settings() -> None:
    """Raise ImproperlyConfigured if the JWT settings cannot verify tokens (used by system checks)."""
    for algorithm in _allowed_algorithms():
        _verification_key(algorithm)


def _string_list(claims: dict[str, Any], name: str) -> frozenset[str]:
    value = claims.get(name)
    if value is None:
        return frozenset()
    if isinstance(value, str):
        # OAuth-style space-separated scopes are accepted too.
        return frozenset(value.split())
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return frozenset(value)
    raise AuthenticationFailed(f"Token claim {name!r} must be a list of strings.")


def encode_token(
    user_id: Any,
    *,
    roles: Iterable[str] = (),
    permissions: Iterable[str] = (),
    ttl: int | float | None = None,
    **claims: Any,
) -> str:
    """Return a signed token for ``user_id`` valid for ``ttl`` seconds (default ``JWT_TTL``).

    The token carries ``sub``, ``aud`` (``JWT_AUDIENCE``), ``iat``, ``exp``, ``roles`` and
    ``permissions``; extra keyword arguments become extra claims (``name="Ada"``,
    ``teams=["7"]``) and may override the defaults (``aud=[...]``).
    """
    if user_id is None or user_id == "" or isinstance(user_id, bool):
        raise ValueError("encode_token() needs a user id (the 'sub' claim).")
    if ttl is None:
        ttl = broadcasting_settings.JWT_TTL
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl <= 0:
        raise ValueError("ttl must be a positive number of seconds.")
    algorithm = _allowed_algorithms()[0]
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "aud": broadcasting_settings.JWT_AUDIENCE,
        "iat": now,
        "exp": now + int(ttl),
        "roles": sorted(set(roles)),
        "permissions": sorted(set(permissions)),
    }
    payload.update(claims)
    return pyjwt.encode(payload, _signing_key(algorithm), algorithm=algorithm)


def token_for_user(user: Any, ttl: int | float | None = None, **claims: Any) -> str:
    """Return a token for a Django user: its pk as ``sub``, its roles and a ``name`` claim.

    Roles come from ``roles_for_user`` (``staff``/``superuser``/``admin`` and group names).
    Runs a query for the groups: call it from a view (sync), or wrap it in ``sync_to_async``.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        raise ValueError("token_for_user() needs an authenticated user.")
    name = (user.get_full_name() if hasattr(user, "get_full_name") else "") or user.get_username()
    claims.setdefault("name", name)
    return encode_token(user.pk, roles=roles_for_user(user), ttl=ttl, **claims)


def decode_token(token: Any) -> Identity:
    """Verify ``token`` and return its ``Identity``.

    Raise ``TokenExpired`` for an expired token and ``AuthenticationFailed`` for every other
    problem: malformed, wrong signature, algorithm not allowed, wrong audience, missing
    ``sub``/``exp``, issued in the future, or malformed ``roles``/``permissions``.
    """
    if not isinstance(token, str) or not token:
        raise AuthenticationFailed("Missing token.")
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationFailed("Token too long.")
    allowed = _allowed_algorithms()
    try:
        header = pyjwt.get_unverified_header(token)
    except (pyjwt.InvalidTokenError, RecursionError):
        # PyJWT lets json's RecursionError through for a header nested a thousand levels deep.
        raise AuthenticationFailed("Malformed token.") from None
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in allowed or algorithm.lower() == "none":
        raise AuthenticationFailed(f"Token algorithm {algorithm!r} is not allowed.")
    try:
        claims = pyjwt.decode(
            token,
            _verification_key(algorithm),
            algorithms=[algorithm],
            audience=broadcasting_settings.JWT_AUDIENCE,
            leeway=broadcasting_settings.JWT_LEEWAY,
            # "sub" is checked below so that integer subjects (as some issuers mint) are accepted.
            options={"require": ["sub", "exp"], "verify_sub": False},
        )
    except pyjwt.ExpiredSignatureError:
        raise TokenExpired() from None
    except pyjwt.InvalidAudienceError:
        raise AuthenticationFailed("Token audience is not accepted.") from None
    except pyjwt.MissingRequiredClaimError as exc:
        raise AuthenticationFailed(f"Token is missing the {exc.claim!r} claim.") from None
    except pyjwt.ImmatureSignatureError:
        raise AuthenticationFailed("Token is not valid yet.") from None
    except pyjwt.InvalidSignatureError:
        raise AuthenticationFailed("Token signature is invalid.") from None
    except pyjwt.InvalidTokenError as exc:
        raise AuthenticationFailed(f"Invalid token: {exc}.") from None
    except RecursionError:
        raise AuthenticationFailed("Malformed token.") from None

    subject = claims["sub"]
    if isinstance(subject, bool) or not isinstance(subject, (str, int)) or subject == "":
        raise AuthenticationFailed("Token claim 'sub' must be a non-empty string.")
    return Identity(
        user_id=str(subject),
        roles=_string_list(claims, "roles"),
        permissions=_string_list(claims, "permissions"),
        claims=claims,
        expires_at=float(claims["exp"]),
    )
