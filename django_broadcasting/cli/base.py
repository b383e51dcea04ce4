"""What the subcommands share: friendly output, one-line errors, reading a server's stats."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from ..conf import broadcasting_settings
from ..exceptions import BroadcastError, TransportError

STATS_PATH = "/api/broadcast/stats"


def say(command: BaseCommand, line: str = "") -> None:
    """Write one line to the command's stdout."""
    command.stdout.write(line)
    command.stdout.flush()


def positive(value: Any, what: str, *, integer: bool = False) -> float:
    """Return ``value`` as a positive number, or raise a one-line ``CommandError``."""
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise CommandError(f"❌ {what} must be a {'whole ' if integer else ''}number, not {value!r}.") from None
    if integer and isinstance(value, float) and number != value:
        raise CommandError(f"❌ {what} must be a whole number, not {value!r}.")
    if not number > 0 or number != number or number == float("inf"):
        raise CommandError(f"❌ {what} must be greater than 0 (got {value}).")
    return number


def one_line(text: Any) -> str:
    return " ".join(str(text).split())


@contextmanager
def friendly_errors(action: str) -> Iterator[None]:
    """Turn what a user can act on into one ``CommandError`` line that says what failed."""
    try:
        yield
    except CommandError:
        raise
    except TransportError as exc:
        raise CommandError(f"❌ {action} failed: {one_line(exc.detail)}") from None
    except BroadcastError as exc:  # bad channel, empty message, unknown level, ...
        raise CommandError(f"❌ {action} failed: {one_line(exc.detail)}") from None
    except ImproperlyConfigured as exc:
        raise CommandError(f"❌ {action} failed: configuration problem: {one_line(exc)}") from None
    except (ConnectionError, OSError, TimeoutError) as exc:  # e.g. Redis refused the connection
        raise CommandError(f"❌ {action} failed: {one_line(exc) or type(exc).__name__}") from None


# -- reading a running server's stats -------------------------------------------------------------
def stats_url(url: str | None = None) -> str:
    """The stats endpoint of the server this project publishes to (or the one given).

    ``url`` may be a server's base URL (``http://host:8080``) or the full endpoint. By
    default it is next to the trigger endpoint (``TRIGGER_URL``, else
    ``http://WEBSOCKET_HOST:WEBSOCKET_PORT``).
    """
    from ..http.trigger import trigger_url

    if url:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.path.rstrip("/").endswith(STATS_PATH.rstrip("/")):
            return urllib.parse.urlunsplit(parts)
        return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + STATS_PATH, query=""))
    base = trigger_url()
    if base.endswith("/events"):
        return base[: -len("/events")] + "/stats"
    parts = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit(parts._replace(path=STATS_PATH, query=""))


def _auth_headers() -> dict[str, str]:
    # A stats token when configured; the trigger signature of an empty body otherwise
    # (every process of the project derives the same secret, so this needs no setup).
    token = broadcasting_settings.STATS_TOKEN
    if token:
        return {"Authorization": f"Bearer {token}"}
    from ..http.trigger import sign

    return sign(b"")


def fetch_stats(url: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    """GET a running server's stats document; raise a one-line ``CommandError`` when it fails."""
    target = stats_url(url)
    timeout = broadcasting_settings.TRIGGER_TIMEOUT if timeout is None else timeout
    request = urllib.request.Request(target, headers={"Accept": "application/json", **_auth_headers()})
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
        raise CommandError(f"❌ The broadcast server at {target} answered HTTP {exc.code}: {one_line(detail)}{hint}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(
            f"❌ Cannot reach the broadcast server at {target}: {one_line(reason)} "
            "(is 'manage.py broadcast websocket' running? set BROADCAST_WEBSOCKET_PORT or --url)"
        ) from None
    except ValueError:
        raise CommandError(f"❌ The broadcast server at {target} did not answer with JSON.") from None
    if not isinstance(document, dict) or "channels" not in document:
        raise CommandError(f"❌ The answer of {target} is not a stats document.")
    return document


def add_url_argument(parser: Any) -> None:
    parser.add_argument(
        "--url",
        metavar="URL",
        help="Server to read (base URL like http://127.0.0.1:8080, or the full stats URL). "
        "Default: the server this project publishes to (BROADCAST_TRIGGER_URL, else "
        "BROADCAST_WEBSOCKET_HOST:BROADCAST_WEBSOCKET_PORT).",
    )


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    if days or hours or minutes:
        parts.append(f"{minutes}m")
    parts.append(f"{seconds}s")
    return " ".join(parts)


def format_rate(value: Any) -> str:
    return f"{float(value or 0):.1f}/s"
