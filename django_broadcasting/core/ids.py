"""Socket ids: the Pusher form ``123.456``, given out by a server process, read back by ``/broadcasting/auth``.

The part before the dot is the process id (mod 1,000,000) and three random digits (they tell
processes with one pid apart: restarts, containers; a socket id is no secret, so no
``os.urandom`` call per socket); with several Pusher apps configured it ends with the app's
position in two digits, so any process knows which app's secret signs for the socket. The part
after the dot counts the process's sockets.
"""

from __future__ import annotations

import os
import random
import re

__all__ = ["SOCKET_ID_RE", "app_position", "new_socket_id"]

#: What a socket id looks like (Pusher's own check).
SOCKET_ID_RE = re.compile(r"\A\d+\.\d+\Z")


def new_socket_id(sequence: int, app_position: int | None = None) -> str:
    """Return the socket id of this process's ``sequence``-th socket (of the app at ``app_position``,
    when several apps are configured)."""
    head = f"{os.getpid() % 1_000_000}{random.randrange(1000):03d}"
    if app_position is not None:
        head += f"{app_position:02d}"
    return f"{head}.{sequence}"


def app_position(socket_id: str) -> int | None:
    """The app position a socket id carries (only meaningful when several apps are configured)."""
    head = socket_id.partition(".")[0]
    if len(head) < 3 or not head[-2:].isdigit():
        return None
    return int(head[-2:])
