"""Whether this process serves WebSockets, and its server as the layers below ``server/`` see it.

``server/`` fills this registry: the hub module installs its factory (``install_hub``) so
that ``http/`` and the stats readers reach the hub without importing ``server/``, and the
server's startup (``LifespanApp`` at lifespan startup or at its first scope, a consumer at its
first connection) calls ``register_local_server(hub)``. Importing a module never marks a
process as serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any, Protocol

__all__ = ["LocalServer", "hub_or_none", "install_hub", "local_server", "register_local_server"]


class LocalServer(Protocol):
    """The server of this process, as publishers, stats readers and the admin see it.

    The ``console_*`` and ``terminate_user`` methods run on the server's event loop.
    """

    node_id: str
    #: False while the server does not take broadcasts (tests turn a process into a client this way).
    serving: bool

    def publish(self, messages: Sequence[Any]) -> None: ...  # Sequence[messages.Message]
    def stats(self) -> dict[str, Any]: ...
    def console_watch(self, ttl: float) -> None: ...
    def console_read(self, after: int, limit: int) -> dict[str, Any]: ...
    def channel_counts(self, prefix: str = "") -> dict[str, int]: ...
    async def members(self, channel: str) -> list[dict[str, Any]]: ...
    async def terminate_user(self, user_id: str, app_id: str | None = None) -> int: ...


_local_server: LocalServer | None = None
_local_lock = threading.Lock()


def register_local_server(server: LocalServer | None) -> LocalServer | None:
    """Mark ``server`` as this process's serving hub (None: not serving); return the previous one."""
    global _local_server
    with _local_lock:
        old, _local_server = _local_server, server
    return old


def local_server() -> LocalServer | None:
    """Return this process's serving hub, or None when this process serves no WebSockets."""
    server = _local_server
    return server if server is not None and server.serving else None


_hub_factory: Callable[[], Any] | None = None


def install_hub(factory: Callable[[], Any]) -> None:
    """Called once by ``server/hub.py``: how to reach (and create) this process's hub."""
    global _hub_factory
    _hub_factory = factory


#: The module that installs the hub factory when imported (loaded by name, for ``load=True``).
HUB_MODULE = "django_broadcasting.server.hub"


def hub_or_none(load: bool = False) -> Any:
    """This process's hub (created on first use), or None when the server code is not loaded.

    A process that never imported ``server/`` cannot be serving, so readers treat None as
    "not serving". ``load=True`` (the trigger, which is the server's own way in) loads the
    server's hub module by name first, so the hub exists in any process.
    """
    factory = _hub_factory
    if factory is None and load:
        import_module(HUB_MODULE)
        factory = _hub_factory
    return factory() if factory is not None else None
