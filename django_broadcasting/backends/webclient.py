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


def _error_detail(exc: urllib.error.HTTPError) -> str:
    detail = exc.read()[:300].decode(errors="replace")
    try:  # our own servers answer {"error": {"message": ...}}
        detail = json.loads(detail)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        pass
    return one_line(detail)


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
        raise TransportError(
            f"{what[0].upper()}{what[1:]} at {url} answered HTTP {exc.code}: {_error_detail(exc)}{hint}"
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransportError(f"Cannot reach {what} at {url}: {one_line(reason)}") from None
    try:
        return json.loads(body or b"{}")
    except ValueError:
        raise TransportError(f"{what[0].upper()}{what[1:]} at {url} did not answer with JSON.") from None
