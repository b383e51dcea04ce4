"""``GET /api/broadcast/stats``: what the server is doing, as JSON, for people and tools.

The document (see docs/operations.md for every field)::

    {"node": "web-1:4242", "generated_at": 1700000000.0, "driver": "websocket",
     "connections": 3, "channels": {"general": 2, "admin": 1}, "presence": {...},
     "presence_members": 0, "rates": {"messages_in": 1.5, "deliveries": 3.0, "frames_in": 0.2},
     "totals": {...}, "nodes": [{...one entry per server process...}]}

Figures come from the hub of the process that answers (``hub.stats()``), plus, when the
Redis scale-out runs, the reports every other node keeps in Redis. Reading them costs the
hot path nothing: the hub only bumps integers, rates are derived here from two samples.

Access: a staff session, ``Authorization: Bearer <STATS_TOKEN>``, or the trigger signature
headers of an empty body (what ``manage.py broadcast stats`` sends). Anything else gets 401
(no credentials) or 403 (wrong ones).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from typing import Any

from asgiref.sync import async_to_sync
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from ..conf import broadcasting_settings
from ..exceptions import TransportError
from ..server.hub import get_hub
from .trigger import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, trigger_url, verify

STATS_PATH = "/api/broadcast/stats"

#: Counters the rates are derived from (per second).
RATE_FIELDS = ("messages_in", "deliveries", "frames_in")
#: Figures summed over nodes into ``totals``.
SUM_FIELDS = ("connections", "connections_total", "presence_members", *RATE_FIELDS)


class RateWindow:
    """Per-second rates of the hub counters, from samples taken whenever stats are read.

    The rate compares the current counters with the newest sample at least ``min_age``
    seconds old (so two pollers do not shrink each other's window to nothing); before there
    is such a sample it is the average since the process started.
    """

    def __init__(self, min_age: float = 1.0, max_age: float = 60.0) -> None:
        self.min_age = min_age
        self.max_age = max_age
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def rates(self, counters: dict[str, int], uptime: float, now: float | None = None) -> dict[str, float]:
        now = time.monotonic() if now is None else now
        while self._samples and now - self._samples[0][0] > self.max_age:
            self._samples.popleft()
        base = None
        for stamp, sample in reversed(self._samples):
            if now - stamp >= self.min_age:
                base = (stamp, sample)
                break
        if base is None:
            span = max(uptime, 1e-9)
            result = {k: round(counters.get(k, 0) / span, 3) for k in RATE_FIELDS}
            result["window"] = round(uptime, 3)
        else:
            span = now - base[0]
            result = {k: round(max(0, counters.get(k, 0) - base[1].get(k, 0)) / span, 3) for k in RATE_FIELDS}
            result["window"] = round(span, 3)
        if not self._samples or now - self._samples[-1][0] >= self.min_age / 2:
            self._samples.append((now, {k: counters.get(k, 0) for k in RATE_FIELDS}))
        return result


_window = RateWindow()


def local_node_stats() -> dict[str, Any]:
    """This process's figures (``hub.stats()``) with message rates added."""
    stats = get_hub().stats()
    stats["errors"] = {str(code): count for code, count in stats.get("errors", {}).items()}
    stats["subscriptions"] = sum(stats["channels"].values())
    stats["rates"] = _window.rates(stats, stats.get("uptime", 0.0))
    return stats


async def _cluster_nodes(local: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node's figures: this one, plus the others' reports when a cluster source exists."""
    try:
        from ..server import cluster  # the Redis scale-out (optional)
    except ImportError:
        return [local]
    reader = getattr(cluster, "anode_stats", None) or getattr(cluster, "node_stats", None)
    if reader is None:
        return [local]
    others = reader()
    if inspect.isawaitable(others):
        others = await others
    nodes = {local["node"]: local}
    for node in others or ():
        if isinstance(node, dict) and node.get("node") and node["node"] not in nodes:
            node.setdefault("subscriptions", sum((node.get("channels") or {}).values()))
            node.setdefault("rates", {k: 0.0 for k in RATE_FIELDS})
            nodes[node["node"]] = node
    return list(nodes.values())


def summarize(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge per-node figures into the stats document (channels and presence across nodes)."""
    channels: dict[str, int] = {}
    presence: dict[str, dict[str, dict[str, Any]]] = {}
    errors: dict[str, int] = {}
    totals: dict[str, Any] = {field: 0 for field in SUM_FIELDS}
    rates = {k: 0.0 for k in RATE_FIELDS}
    for node in nodes:
        for field in SUM_FIELDS:
            totals[field] += int(node.get(field) or 0)
        for name, count in (node.get("channels") or {}).items():
            channels[name] = channels.get(name, 0) + int(count)
        for name, members in (node.get("presence") or {}).items():
            # A user on several nodes (or tabs) is one member.
            merged = presence.setdefault(name, {})
            for member in members:
                merged.setdefault(str(member.get("id")), member)
        for code, count in (node.get("errors") or {}).items():
            errors[str(code)] = errors.get(str(code), 0) + int(count)
        for k in RATE_FIELDS:
            rates[k] += float((node.get("rates") or {}).get(k, 0.0))
    presence_lists = {name: list(members.values()) for name, members in sorted(presence.items())}
    rates = {k: round(v, 3) for k, v in rates.items()}
    totals.update(
        {
            "nodes": len(nodes),
            "channels": len(channels),
            "subscriptions": sum(channels.values()),
            "presence_members": sum(len(m) for m in presence_lists.values()) if presence_lists else totals["presence_members"],
            "errors": errors,
            "rates": rates,
        }
    )
    return {
        "connections": totals["connections"],
        "channels": dict(sorted(channels.items())),
        "presence": presence_lists,
        "presence_members": totals["presence_members"],
        "rates": rates,
        "totals": totals,
        "nodes": nodes,
    }


async def acollect_stats() -> dict[str, Any]:
    """The stats document of this process (and of the cluster it belongs to)."""
    local = local_node_stats()
    document = summarize(await _cluster_nodes(local))
    return {
        "node": local["node"],
        "generated_at": round(time.time(), 3),
        "driver": broadcasting_settings.DEFAULT_DRIVER,
        **document,
    }


def get_stats(timeout: float | None = None) -> dict[str, Any]:
    """The stats document, from any thread: this process's hub when it serves WebSockets,
    else the running server's ``GET /api/broadcast/stats`` (``TransportError`` if unreachable)."""
    hub = get_hub()
    if not hub.serving:
        return fetch_remote_stats(timeout=timeout)
    loop = hub.loop
    if loop is not None and loop.is_running() and not _in_loop(loop):
        # The hub belongs to the server's event loop: read it there, never from this thread.
        future = asyncio.run_coroutine_threadsafe(acollect_stats(), loop)
        return future.result(timeout or broadcasting_settings.TRIGGER_TIMEOUT)
    return async_to_sync(acollect_stats)()


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    return getattr(loop, "_thread_id", None) == threading.get_ident()


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
        raise TransportError(f"The broadcast server at {target} answered HTTP {exc.code}: {_one_line(detail)}{hint}") from None
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


def _bearer(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def check_access(request: HttpRequest) -> JsonResponse | None:
    """None when the request may read stats; else the 401/403 response to return."""
    token = _bearer(request)
    expected = broadcasting_settings.STATS_TOKEN
    if token is not None:
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            return None
        return _refuse(403, "Invalid stats token.", "bad_token")
    timestamp, signature = request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)
    if timestamp or signature:
        problem = verify(b"", timestamp, signature)
        if problem is None:
            return None
        return _refuse(403, f"Request refused: {problem}.", problem.replace(" ", "_"))
    user = await request.auser() if hasattr(request, "auser") else getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        if user.is_active and user.is_staff:
            return None
        return _refuse(403, "Staff access required.", "forbidden")
    return _refuse(401, "Authentication required: a staff session, a stats token or a signed request.", "unauthenticated")


def _refuse(status: int, message: str, code: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="broadcast-stats"'
    return response


@require_GET
async def stats(request: HttpRequest) -> JsonResponse:
    """``GET /api/broadcast/stats``: the stats document (see the module docstring)."""
    refused = await check_access(request)
    if refused is not None:
        return refused
    response = JsonResponse(await acollect_stats(), json_dumps_params={"separators": (",", ":")})
    response["Cache-Control"] = "no-store"
    return response
