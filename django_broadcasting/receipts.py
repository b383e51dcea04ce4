"""Who accepted a broadcast: the line ``manage.py broadcast test`` prints after a publish.

A publish succeeds only when a server or the backend accepted it. Code that wants to say
*which* one wraps the publish in ``collect()``; the trigger publisher notes the identity the
server answered (``note()``), and ``describe()`` names the backend for every other driver::

    with receipts.collect() as accepted:
        broadcast_to_channel("general", "test", {}, driver=driver)
    print("Accepted by", receipts.describe(driver, accepted))

The collector is a context variable holding a list, so it follows the publish through
``async_to_sync`` and ``sync_to_async`` and costs nothing when no one collects.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .drivers.base import BaseDriver

__all__ = ["collect", "describe", "note"]

_collector: ContextVar[list[str] | None] = ContextVar("django_broadcasting_receipts", default=None)


@contextmanager
def collect() -> Iterator[list[str]]:
    """Collect, in the returned list, who accepted each publish made inside the block."""
    accepted: list[str] = []
    token = _collector.set(accepted)
    try:
        yield accepted
    finally:
        _collector.reset(token)


def note(accepted_by: str) -> None:
    """Note who accepted a publish (``"the server at 127.0.0.1:8000 (node ..., project ...)"``)."""
    accepted = _collector.get()
    if accepted is not None:
        accepted.append(accepted_by)


def describe(driver: BaseDriver, accepted: list[str] | None = None) -> str:
    """Name what accepted a publish through ``driver``: the noted server, else the backend."""
    if accepted:
        return accepted[-1]
    name = driver.driver_name()
    if name == "redis":
        return f"Redis at {driver.location()}"  # type: ignore[attr-defined]
    if name == "websocket":
        from channels.layers import InMemoryChannelLayer

        layer = driver.layer()  # type: ignore[attr-defined]
        if isinstance(layer, InMemoryChannelLayer):
            from .discovery import describe_server, server_identity

            return f"this process's own hub ({describe_server(server_identity())})"
        hosts = [_address(host) for host in getattr(layer, "hosts", None) or []]
        where = f" at {', '.join(hosts)}" if hosts else ""
        return f"the channel layer {driver.layer_alias!r} ({type(layer).__name__}{where})"  # type: ignore[attr-defined]
    if name == "pusher":
        origin, _ = driver.origin_and_prefix()  # type: ignore[attr-defined]
        return f"the Pusher HTTP API at {origin}"
    if name == "log":
        return "the log driver (written to the log; no server receives it)"
    if name == "null":
        return "the null driver (discarded; no server receives it)"
    if name == "memory":
        return "the memory driver (kept in this process; no server receives it)"
    return f"the {name!r} driver (alias {driver.alias!r})"


def _address(host: object) -> str:
    """A channels-redis host entry as ``host:port``, never with its password."""
    address = host.get("address", "?") if isinstance(host, dict) else host
    if isinstance(address, (tuple, list)):
        return ":".join(str(part) for part in address)
    parts = urlsplit(str(address))
    if parts.scheme and parts.hostname:
        return f"{parts.hostname}:{parts.port or 6379}{parts.path if parts.path not in ('', '/') else ''}"
    return str(address)
