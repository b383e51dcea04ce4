"""The direct-write fast path, fenced in: every use of a server's private state lives in this package.

Fan-out may write a broadcast's pre-framed bytes straight to a socket instead of going through
the ASGI ``send`` (see ``server/connection.py``). That reads private state of the server, so it
is enabled only where a contract test covers the installed versions:

| server | module | contract test |
| --- | --- | --- |
| this project's uvicorn front (``server/front/``) | its ``direct_writer()`` hook | ``tests/integration/test_fastpath_contract.py`` |
| uvicorn ``websockets-sansio`` | ``uvicorn_sansio.py`` | ``tests/integration/test_fastpath_contract.py`` |
| uvicorn ``websockets`` | ``uvicorn_websockets.py`` | ``tests/integration/test_fastpath_contract.py`` |
| daphne (autobahn, Twisted) | ``daphne.py`` | ``tests/integration/test_fanout_order.py`` |

The other uses of a server's private state live here too, behind the same gate:

| what | module | when the version is not tested |
| --- | --- | --- |
| daphne's ``serverClose`` patch (1001/1011/1012/1013 allowed) and the Twisted shutdown hook (1012 to every socket first) | ``daphne.py`` | daphne's own behaviour |
| uvicorn's SIGTERM/SIGINT handlers wrapped (Pusher clients get 4200 before uvicorn's 1012) | ``uvicorn.py`` | handlers left alone (1012) |
| finishing a suspended ``send`` (``_asyncio_future_blocking``, CPython's future protocol) | ``asyncio_internals.py`` | (stdlib; no gate) |

``TESTED`` lists the versions those tests ran against (a version matches when it starts with
the listed prefix). Any other server, or another version of one of these, gets the ASGI send;
so does every socket when ``DIRECT_WRITES`` is off. The first socket of each kind logs one line
on ``django_broadcasting.server`` saying which path is active and why.
"""

from __future__ import annotations

import functools
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ...conf import broadcasting_settings
from . import asyncio_internals, daphne, uvicorn, uvicorn_sansio, uvicorn_websockets  # noqa: F401
from .base import SlowClient, Writer

__all__ = ["TESTED", "SlowClient", "Writer", "direct_writer", "path_for", "writer_for"]

logger = logging.getLogger("django_broadcasting.server")

#: The distributions each kind of server's direct writer reads, and the versions its contract
#: test covers (prefixes of the version string).
_UVICORN = {"uvicorn": ("0.54.",), "websockets": ("17.",)}
TESTED: dict[str, dict[str, tuple[str, ...]]] = {
    "front": _UVICORN,
    "uvicorn-websockets-sansio": _UVICORN,
    "uvicorn-websockets": _UVICORN,
    "daphne": {"daphne": ("4.2.",), "autobahn": ("26.",), "twisted": ("26.",)},
    # uvicorn's signal handling (``uvicorn.py``): no websockets library involved.
    "uvicorn": {"uvicorn": _UVICORN["uvicorn"]},
}

_reported: set[str] = set()


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


@functools.cache
def path_for(kind: str) -> tuple[bool, str]:
    """(direct writes enabled for this kind of server, why): decided once per process."""
    found = []
    for distribution, prefixes in TESTED[kind].items():
        installed = _installed(distribution)
        if installed is None or not installed.startswith(prefixes):
            tested = ", ".join(f"{p}*" for p in prefixes)
            return (
                False,
                f"{distribution} {installed or '(not installed)'} has no contract test (tested: {tested})",
            )
        found.append(f"{distribution} {installed}")
    return True, "contract-tested " + ", ".join(found)


def _report(kind: str, enabled: bool, why: str) -> None:
    if kind not in _reported:
        _reported.add(kind)
        path = "direct writes" if enabled else "the ASGI send"
        logger.info("fan-out on %s uses %s: %s", kind, path, why)


def _gate(kind: str) -> bool:
    enabled, why = path_for(kind)
    _report(kind, enabled, why)
    return enabled


def _server_send(send: Any) -> Any:
    """Strip wrappers that only act on HTTP responses (Channels' session middleware) off ``send``."""
    for _ in range(8):
        real = getattr(getattr(send, "__self__", None), "real_send", None)
        if real is None:
            return send
        send = real
    return send


def direct_writer(send: Any) -> Writer | None:
    """Return ``write(wire) -> bool`` writing straight to the socket behind ``send``, or None.

    None for a server without a contract-tested writer (the ASGI send takes every frame).
    """
    send = _server_send(send)
    if isinstance(send, functools.partial):  # daphne: partial(server.handle_reply, protocol)
        server = getattr(send.func, "__self__", None)
        if (
            send.args
            and getattr(send.func, "__name__", "") == "handle_reply"
            and type(server).__module__.startswith("daphne.")
        ):
            return daphne.writer(server, send.args[0]) if _gate("daphne") else None
        return None
    owner = getattr(send, "__self__", None)
    hook = getattr(owner, "direct_writer", None)
    if callable(hook):
        # A server front that offers the hook itself (``server/front/uvicorn.py``): it knows
        # its own state, so no private attribute is probed here.
        return hook() if _gate("front") else None
    module = type(owner).__module__
    if module == "uvicorn.protocols.websockets.websockets_sansio_impl":
        return uvicorn_sansio.writer(owner) if _gate("uvicorn-websockets-sansio") else None
    if module == "uvicorn.protocols.websockets.websockets_impl":
        return uvicorn_websockets.writer(owner) if _gate("uvicorn-websockets") else None
    return None


def writer_for(send: Any) -> Writer | None:
    """The direct writer of a new socket, or None: ``DIRECT_WRITES`` off, or no tested writer."""
    if not broadcasting_settings.DIRECT_WRITES:
        _report("every server", False, "DIRECT_WRITES is off")
        return None
    return direct_writer(send)
