"""Channels-layer group names: one group per broadcast channel, valid for every channel layer.

A group name holds ``[A-Za-z0-9-_.]`` and fewer than 100 characters. Channel names outside that
(``=@,;#:``, or too long) are hashed into ``<prefix>bc.h.<digest>``; a literal channel name that
starts with ``h.`` is hashed too, so no channel name can reach the hashed namespace and take over
another channel's group.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["HASHED", "group_name"]

#: Channel names starting with this are always hashed (the hashed namespace).
HASHED = "h."

_GROUP_SAFE = re.compile(r"[A-Za-z0-9\-_.]+")


def group_name(channel: str, prefix: str = "") -> str:
    """Return the Channels group that carries ``channel``, under the layer prefix ``prefix``."""
    name = f"{prefix}bc.{channel}"
    if len(name) < 100 and not channel.startswith(HASHED) and _GROUP_SAFE.fullmatch(name):
        return name
    digest = hashlib.sha256(channel.encode()).hexdigest()[:40]
    safe_prefix = re.sub(r"[^A-Za-z0-9\-_.]", "_", prefix)[:40]
    return f"{safe_prefix}bc.{HASHED}{digest}"
