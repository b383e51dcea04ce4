"""Compatibility: older spellings and import paths, kept so existing code runs unchanged.

The one documented way to publish is ``broadcast(...).event(...).with_data(...).send()`` (or
``asend()``) plus the Laravel-style helpers (``broadcast_to_channel``, ``broadcast_to_user``,
``broadcast_to_organization``, ``notify_user``, ``system_alert``, ``broadcast_many``), all in
``django_broadcasting.publishing`` and exported by ``django_broadcasting``. What is here works,
is tested, and is not the way new code is written:

- ``PendingBroadcast.data(...)`` and ``PendingBroadcast.with_(...)``: aliases of ``with_data``;
- ``BroadcastFacade``: static entry points over the helpers (``BroadcastFacade.notify_user(...)``
  is ``notify_user(...)``);
- module paths that moved (each old module still imports, see docs/architecture.md):

  ========================================================  ===============================================
  old path                                                  now
  ========================================================  ===============================================
  ``django_broadcasting.broadcasting``                      ``django_broadcasting.publishing`` (same module)
  ``django_broadcasting.server.codes``                      ``django_broadcasting.core.codes``
  ``django_broadcasting.server.series``                     ``django_broadcasting.stats.series``
  ``django_broadcasting.http.stats_client``                 ``django_broadcasting.stats.remote``
  ``django_broadcasting.server.consumers``                  ``django_broadcasting.server.protocols.consumer``,
                                                            ``django_broadcasting.server.protocols.native.consumer``
  ``django_broadcasting.server.pusher_consumer``            ``django_broadcasting.server.protocols.pusher.consumer``
  ``django_broadcasting.server.pusher_connection``          ``django_broadcasting.server.protocols.pusher.connection``
  ``django_broadcasting.server.protocols.pusher_routing``   ``django_broadcasting.server.protocols.pusher.routing``
  ``django_broadcasting.server.daphne_compat``              ``django_broadcasting.auth.daphne_scope`` (the scheme),
  ``.report_websocket_scheme``
  ``django_broadcasting.server.daphne_compat``              ``django_broadcasting.server.fastpath.daphne``
  ``.allow_standard_close_codes``
  ``django_broadcasting.server.connection.direct_writer``   ``django_broadcasting.server.fastpath``
  ========================================================  ===============================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .publishing import PendingBroadcast

__all__ = ["BroadcastFacade", "PendingBroadcastAliases"]  # noqa: F822 - BroadcastFacade: see __getattr__


class PendingBroadcastAliases:
    """``.data()`` and ``.with_()``: older names of ``PendingBroadcast.with_data()``."""

    __slots__ = ()

    def data(self, data: Any = None, **fields: Any) -> PendingBroadcast:
        return self.with_data(data, **fields)  # type: ignore[attr-defined]

    def with_(self, data: Any = None, **fields: Any) -> PendingBroadcast:
        return self.with_data(data, **fields)  # type: ignore[attr-defined]


def _facade() -> type:
    from . import publishing
    from .publishing import PendingBroadcast, broadcast

    class BroadcastFacade:
        """``BroadcastFacade``: static entry points over the helpers above."""

        @staticmethod
        def to_user(user_id: Any) -> PendingBroadcast:
            return PendingBroadcast().to_user(user_id)

        @staticmethod
        def to_organization(organization_id: Any) -> PendingBroadcast:
            return PendingBroadcast().to_organization(organization_id)

        @staticmethod
        def channel(name: str) -> PendingBroadcast:
            return PendingBroadcast().channel(name)

        @staticmethod
        def channels(names: Iterable[str]) -> PendingBroadcast:
            return PendingBroadcast().channels(names)

        @staticmethod
        def event(event: Any) -> PendingBroadcast:
            """Start from a ``ShouldBroadcast`` event (like ``broadcast(event)``)."""
            return broadcast(event)

        notify_user = staticmethod(publishing.notify_user)
        anotify_user = staticmethod(publishing.anotify_user)
        system_alert = staticmethod(publishing.system_alert)
        asystem_alert = staticmethod(publishing.asystem_alert)
        broadcast_to_channel = staticmethod(publishing.broadcast_to_channel)
        abroadcast_to_channel = staticmethod(publishing.abroadcast_to_channel)
        broadcast_to_user = staticmethod(publishing.broadcast_to_user)
        abroadcast_to_user = staticmethod(publishing.abroadcast_to_user)

    BroadcastFacade.__module__ = __name__
    return BroadcastFacade


_built: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    # Built on first use: this module sits below ``publishing`` (whose ``PendingBroadcast``
    # inherits the aliases above), so the facade cannot import the helpers at import time.
    if name == "BroadcastFacade":
        if name not in _built:
            _built[name] = _facade()
        return _built[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
