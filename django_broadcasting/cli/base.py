"""What the subcommands share: friendly output, one-line errors, reading a server's stats."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from ..exceptions import BroadcastError, TransportError


def say(command: BaseCommand, line: str = "") -> None:
    """Write one line to the command's stdout."""
    command.stdout.write(line)
    command.stdout.flush()


def positive(value: Any, what: str, *, integer: bool = False) -> float:
    """Return ``value`` as a positive number, or raise a one-line ``CommandError``."""
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise CommandError(
            f"❌ {what} must be a {'whole ' if integer else ''}number, not {value!r}."
        ) from None
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
def fetch_stats(url: str | None = None, timeout: float | None = None) -> dict[str, Any]:
    """The stats document of the running server(s); a one-line ``CommandError`` when unreachable.

    With the ``redis`` driver (and no ``url``) every node's report is read from Redis, so the
    command sees the whole cluster without knowing any server's address; otherwise it GETs
    the server's ``/api/broadcast/stats``.
    """
    from ..stats import collect, fetch_remote, has_cluster

    if url is None:
        with friendly_errors("Reading stats"):
            cluster = has_cluster()
        if cluster:
            with friendly_errors("Reading stats"):
                document = async_to_sync(collect)()
            if not document["nodes"]:
                raise CommandError(
                    "❌ No broadcast server has reported to Redis: is one running with BROADCAST_DRIVER=redis "
                    "and the same BROADCAST_CHANNELS_PREFIX?"
                )
            return document
    try:
        return fetch_remote(url, timeout)
    except TransportError as exc:
        hint = ""
        if "Cannot reach" in exc.detail:
            hint = " (is 'manage.py broadcast websocket' running? set BROADCAST_WEBSOCKET_PORT or --url)"
        raise CommandError(f"❌ {exc.detail}{hint}") from None


def stats_url(url: str | None = None) -> str:
    from ..stats import stats_url as _stats_url

    return _stats_url(url)


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
