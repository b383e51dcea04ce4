"""What every direct writer shares: its type and the exception for a client that stopped reading."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SlowClient", "Writer"]

#: ``write(wire) -> bool``: False (nothing written) whenever the server's own send would not
#: simply write the frame now; the caller then uses the ASGI send.
Writer = Callable[[bytes], bool]


class SlowClient(Exception):
    """A direct writer found the socket's server-side buffer past its bound."""
