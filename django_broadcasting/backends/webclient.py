"""One small HTTP client for the processes that talk to a broadcasting server over HTTP.

The trigger publisher, the stats reader and the ``pusher`` driver all send one request and
read one JSON answer; every failure becomes a one-line ``TransportError`` that names the
peer (``what``) and the URL, never a traceback or a hang past ``timeout``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from ..exceptions import TransportError


def one_line(text: Any) -> str:
    """Collapse whitespace so an error message stays on one line."""
    return " ".join(str(text).split())


class HTTPAnswerError(TransportError):
    """The peer answered with an HTTP error status; ``status`` and its JSON ``payload`` (or None)."""

    def __init__(self, detail: str, *, status: int, payload: Any = None) -> None:
        super().__init__(detail)
        self.status = status
        self.payload = payload


def _error_detail(raw: bytes) -> tuple[str, Any]:
    detail: Any = raw[:300].decode(errors="replace")
    payload = None
    try:  # our own servers answer {"error": {"message": ...}}
        payload = json.loads(raw)
        detail = payload["error"]["message"]
    except (ValueError, KeyError, TypeError):
        pass
    return one_line(detail), payload


def request_json(
    url: str,
    *,
    what: str,
    timeout: float,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
) -> Any:
    """Send one request and return its decoded JSON answer, or raise ``TransportError``."""
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - configured URL
            body = response.read()
    except urllib.error.HTTPError as exc:
        hint = " (is django_broadcasting.http.urls included?)" if exc.code == 404 else ""
        detail, payload = _error_detail(exc.read(65536))
        raise HTTPAnswerError(
            f"{what[0].upper()}{what[1:]} at {url} answered HTTP {exc.code}: {detail}{hint}",
            status=exc.code,
            payload=payload,
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransportError(f"Cannot reach {what} at {url}: {one_line(reason)}") from None
    try:
        return json.loads(body or b"{}")
    except ValueError:
        raise TransportError(f"{what[0].upper()}{what[1:]} at {url} did not answer with JSON.") from None
