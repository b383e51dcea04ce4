"""Authentication for django-broadcasting: identities, JWTs and the ASGI middleware.

``Identity``/``ANONYMOUS`` and the request helpers live in ``auth.identity``, tokens in
``auth.jwt`` (``encode_token``, ``token_for_user``, ``decode_token``), and the WebSocket
middleware in ``auth.middleware``. Everything is re-exported here lazily, so importing this
package never imports Channels or reads settings.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "Identity": "identity",
    "ANONYMOUS": "identity",
    "aget_user": "identity",
    "get_user": "identity",
    "identity_for_user": "identity",
    "aidentity_for_user": "identity",
    "identity_from_request": "identity",
    "aidentity_from_request": "identity",
    "roles_for_user": "identity",
    "encode_token": "jwt",
    "token_for_user": "jwt",
    "decode_token": "jwt",
    "BroadcastAuthMiddleware": "middleware",
    "BroadcastAuthMiddlewareStack": "middleware",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
