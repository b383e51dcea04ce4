"""``SocketIdMiddleware``: the request's ``X-Socket-ID`` header as the current socket id.

    MIDDLEWARE = [..., "django_broadcasting.middleware.SocketIdMiddleware"]

``event.to_others()`` and ``broadcast(...).to_others()`` then skip the sender's socket. The old
path, ``django_broadcasting.context.SocketIdMiddleware``, names the same class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from .context import HEADER, _current_socket_id, clean_socket_id

__all__ = ["SocketIdMiddleware"]


class SocketIdMiddleware:
    """Expose the request's ``X-Socket-ID`` header through ``get_socket_id()`` (sync and async)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self.__acall__(request)
        token = _current_socket_id.set(clean_socket_id(request.headers.get(HEADER)))
        try:
            return self.get_response(request)
        finally:
            _current_socket_id.reset(token)

    async def __acall__(self, request: Any) -> Any:
        token = _current_socket_id.set(clean_socket_id(request.headers.get(HEADER)))
        try:
            return await self.get_response(request)
        finally:
            _current_socket_id.reset(token)
