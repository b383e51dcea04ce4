"""The current request's socket id, for ``to_others()``.

A browser client sends its own connection's socket id in the ``X-Socket-ID`` header (Laravel
Echo does this for axios; our JS client's ``socketId()`` gives the value). ``SocketIdMiddleware``
keeps the header in a context variable for the duration of the request, so
``broadcast(...).to_others()`` and ``event.to_others()`` without an argument exclude the sender.

Add it to ``MIDDLEWARE``::

    MIDDLEWARE = [..., "django_broadcasting.middleware.SocketIdMiddleware"]

Outside a request (tasks, the CLI) use ``with socket_id_context("123.456"): ...`` or pass the
id explicitly: ``to_others("123.456")``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

HEADER = "X-Socket-ID"
# Pusher ids look like "1234.5678"; native ids are opaque tokens. Anything else is ignored, not trusted.
_SOCKET_ID_RE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_current_socket_id: ContextVar[str | None] = ContextVar("django_broadcasting_socket_id", default=None)


def clean_socket_id(value: Any) -> str | None:
    """Return ``value`` if it looks like a socket id, else None."""
    if isinstance(value, str) and _SOCKET_ID_RE.fullmatch(value.strip()):
        return value.strip()
    return None


def get_socket_id() -> str | None:
    """Return the socket id of the current request (or ``socket_id_context``), if any."""
    return _current_socket_id.get()


def socket_id_from(source: Any) -> str | None:
    """Return a socket id from a string, an ``HttpRequest`` (its header), or the current context."""
    if source is None:
        return get_socket_id()
    if isinstance(source, str):
        return clean_socket_id(source)
    headers = getattr(source, "headers", None)
    if headers is not None:
        return clean_socket_id(headers.get(HEADER))
    return None


@contextmanager
def socket_id_context(socket_id: str | None) -> Iterator[None]:
    """Make ``socket_id`` the current one inside the ``with`` block."""
    token = _current_socket_id.set(clean_socket_id(socket_id))
    try:
        yield
    finally:
        _current_socket_id.reset(token)


# -- where a broadcast comes from, for the admin's debug console ----------------------------------
_current_origin: ContextVar[str | None] = ContextVar("django_broadcasting_origin", default=None)


def get_origin() -> str | None:
    """The origin label publishes in this context carry (``broadcast_origin``), or None."""
    return _current_origin.get()


@contextmanager
def broadcast_origin(label: str | None) -> Iterator[None]:
    """Label every broadcast published inside the block with ``label`` ("cli", "api", ...).

    The label travels with each message (an optional transport field) and is shown in the
    admin's debug console; messages that already carry one keep it. Application code needs
    none: unlabelled broadcasts are shown as ``app``.
    """
    token = _current_origin.set(label)
    try:
        yield
    finally:
        _current_origin.reset(token)


def __getattr__(name: str) -> Any:
    if name == "SocketIdMiddleware":  # moved to middleware.py; MIDDLEWARE may still name it here
        from .middleware import SocketIdMiddleware

        return SocketIdMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
