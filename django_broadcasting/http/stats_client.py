"""Reading a running server's stats over HTTP (the CLI, and an admin outside the server).

``fetch_remote_stats()`` GETs ``/api/broadcast/stats`` of the server this project publishes
to, authenticated with ``STATS_TOKEN`` or the trigger signature of an empty body.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..conf import broadcasting_settings
from ..exceptions import TransportError
from .trigger import sign, trigger_url

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


def fetch_remote_stats(url: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    """GET a running server's stats document; ``TransportError`` (one line) when that fails."""
    target = stats_url(url)
    timeout = broadcasting_settings.TRIGGER_TIMEOUT if timeout is None else timeout
    request = urllib.request.Request(target, headers={"Accept": "application/json", **client_headers()})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - configured URL
            document = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        try:
            detail = json.loads(detail)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        hint = " (is django_broadcasting.http.urls included?)" if exc.code == 404 else ""
        raise TransportError(
            f"The broadcast server at {target} answered HTTP {exc.code}: {_one_line(detail)}{hint}"
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransportError(f"Cannot reach the broadcast server at {target}: {_one_line(reason)}") from None
    except ValueError:
        raise TransportError(f"The broadcast server at {target} did not answer with JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("channels"), dict):
        raise TransportError(f"The answer of {target} is not a stats document.")
    return document


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())
