"""Reading a running server's stats over HTTP (the CLI, and an admin outside the server).

``fetch_remote()`` GETs ``/api/broadcast/stats`` of the server this project publishes
to, authenticated with ``STATS_TOKEN`` or the trigger signature of an empty body.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["STATS_PATH", "client_headers", "fetch_remote", "stats_url"]

from ..backends.local.trigger import sign, trigger_url
from ..backends.webclient import request_json
from ..conf import broadcasting_settings
from ..exceptions import TransportError

#: Where the stats API answers (``http/urls.py`` routes it here).
STATS_PATH = "/api/broadcast/stats"


def stats_url(url: str | None = None) -> str:
    """The stats endpoint of the server this project publishes to (or of ``url``).

    ``url`` may be a server's base URL (``http://host:8080``) or the full endpoint. By
    default it sits next to the trigger endpoint (``TRIGGER_URL``, else
    ``http://WEBSOCKET_HOST:WEBSOCKET_PORT``).
    """
    if url:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.path.rstrip("/").endswith(STATS_PATH):
            return urllib.parse.urlunsplit(parts)
        return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + STATS_PATH, query=""))
    base = trigger_url()
    if base.endswith("/events"):
        return base[: -len("/events")] + "/stats"
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(base)._replace(path=STATS_PATH, query=""))


def client_headers() -> dict[str, str]:
    """Headers that authenticate a stats read: ``STATS_TOKEN`` when set, else the trigger
    signature of an empty body (every process of a project derives the same secret)."""
    token = broadcasting_settings.STATS_TOKEN
    if token:
        return {"Authorization": f"Bearer {token}"}
    return sign(b"")


def fetch_remote(url: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    """GET a running server's stats document; ``TransportError`` (one line) when that fails."""
    target = stats_url(url)
    timeout = broadcasting_settings.TRIGGER_TIMEOUT if timeout is None else timeout
    headers = {"Accept": "application/json", **client_headers()}
    document = request_json(target, what="the broadcast server", timeout=timeout, headers=headers)
    if not isinstance(document, dict) or not isinstance(document.get("channels"), dict):
        raise TransportError(f"The answer of {target} is not a stats document.")
    return document


#: Older name.
fetch_remote_stats = fetch_remote
