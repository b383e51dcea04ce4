"""The client address of a connection, for per-address limits.

``scope["client"]`` is the peer that opened the TCP connection. Behind a reverse proxy that is
the proxy, so when the peer is listed in ``TRUSTED_PROXIES`` (addresses or networks, e.g.
``127.0.0.1,10.0.0.0/8``) the client is read from ``X-Forwarded-For``: the right-most address
that is not itself a trusted proxy. Headers from any other peer are ignored, so a client
cannot pick its own address. (uvicorn's ``--proxy-headers`` with ``--forwarded-allow-ips``
rewrites ``scope["client"]`` the same way before this runs.)

Loopback clients are not limited (``limited()``): they are this machine's own tools and load
generators, or a proxy on this machine whose clients' addresses are not passed on. Behind a
proxy, list it in ``TRUSTED_PROXIES`` so that the limit sees the real clients.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from ..conf import broadcasting_settings

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[_Network, ...]:
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            continue  # the system check reports it
    return tuple(out)


def _trusted(address: str, networks: tuple[_Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(scope: dict[str, Any]) -> str:
    """Return the address a connection counts against (``"unknown"`` when the server gives none)."""
    client = scope.get("client") or ("unknown", 0)
    peer = str(client[0])
    networks = _networks(tuple(broadcasting_settings.TRUSTED_PROXIES))
    if not networks or not _trusted(peer, networks):
        return peer
    forwarded = b""
    for name, value in scope.get("headers") or ():
        if name == b"x-forwarded-for":
            forwarded = forwarded + b"," + value if forwarded else value
    hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def limited(address: str) -> bool:
    """Whether connections from ``address`` count against ``MAX_CONNECTIONS_PER_ADDRESS``."""
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # "unknown" (no client in the scope) or a unix socket path
