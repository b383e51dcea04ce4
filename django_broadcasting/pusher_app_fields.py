"""Parsers of one Pusher app's fields (``PUSHER_APPS`` entries and the single-app settings).

Each takes the value, where it comes from (``PUSHER_APPS[1] (app id '1002')``) and the field's
name, and returns the parsed value or raises ``ImproperlyConfigured`` naming both. No message
ever repeats a secret.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from .conf import WEBHOOK_EVENTS as _WEBHOOK_EVENT_NAMES
from .exceptions import BroadcastingImproperlyConfigured

__all__ = [
    "ID_RULE",
    "KEY_RULE",
    "WEBHOOK_EVENTS",
    "count",
    "events",
    "fail",
    "flag",
    "master_key",
    "strings",
    "text",
    "urls",
]

#: The webhook events of Pusher's format.
WEBHOOK_EVENTS = frozenset(_WEBHOOK_EVENT_NAMES)

#: What an app id and an app key may hold (they appear in URLs and in hub channel names).
ID_RULE = (re.compile(r"[A-Za-z0-9_\-.]{1,64}"), "1 to 64 letters, digits or _-.")
KEY_RULE = (re.compile(r"[A-Za-z0-9_\-.=@,;]{1,200}"), "1 to 200 letters, digits or _-.=@,;")


def fail(where: str, message: str) -> BroadcastingImproperlyConfigured:
    """Return the error to raise for a bad field."""
    return BroadcastingImproperlyConfigured(f"{where}: {message}")


def text(value: Any, where: str, name: str, rule: tuple[re.Pattern[str], str] | None = None) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and name == "id":
        value = str(value)
    if not isinstance(value, str) or not value:
        raise fail(where, f"'{name}' must be a non-empty string.")
    if rule is not None and not rule[0].fullmatch(value):
        raise fail(where, f"'{name}' {value[:80]!r} must be {rule[1]}.")
    return value


def count(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise fail(where, f"'{name}' must be a whole number >= 0 (got {value!r}).")
    return value


def flag(value: Any, where: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise fail(where, f"'{name}' must be true or false (got {value!r}).")
    return value


def strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(
            v.strip() for v in (value if isinstance(value, (list, tuple)) else sorted(value)) if v.strip()
        )
    raise fail(where, f"'{name}' must be a list of strings (or a comma-separated string).")


def urls(value: Any, where: str, name: str) -> tuple[str, ...]:
    urls = strings(value, where, name)
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise fail(where, f"'{name}' entry {url[:80]!r} is not an http(s) URL.")
    return urls


def events(value: Any, where: str, name: str) -> frozenset[str]:
    events = frozenset(strings(value, where, name))
    unknown = sorted(events - WEBHOOK_EVENTS)
    if unknown:
        raise fail(
            where,
            f"'{name}' has unknown event(s) {', '.join(unknown)}; known: {', '.join(sorted(WEBHOOK_EVENTS))}.",
        )
    return events


def master_key(value: Any, where: str, name: str) -> bytes:
    if isinstance(value, bytes) and len(value) == 32:  # a setting that decoded it already
        return value
    if not isinstance(value, str):
        raise fail(where, f"'{name}' must be a base64 string.")
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise fail(where, f"'{name}' is not valid base64.") from None
    if len(key) != 32:
        raise fail(where, f"'{name}' must decode to 32 bytes (it decodes to {len(key)}).")
    return key
