"""``monitor``: a live view of connections, channels and message rates.

On a terminal the view is redrawn in place every ``--interval`` seconds; when stdout is
not a terminal (a pipe, a log file, CI) each refresh is one plain line instead, so the
output stays readable and greppable. Rates are the change of the server's counters
between two refreshes.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from .base import add_url_argument, fetch_stats, format_duration, format_rate, positive, say, stats_url

RATE_KEYS = ("messages_in", "deliveries", "frames_in")
CLEAR = "\x1b[H\x1b[2J"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "monitor",
        help="Watch a running server live: connections, channels and message rates.",
        description="Poll the running server's stats every --interval seconds for --duration seconds "
        "(Ctrl-C stops early, exit status 0). On a terminal the view refreshes in place; otherwise "
        "each refresh prints one plain line.",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="How long to watch, > 0 (default: 60).",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="Seconds between refreshes, > 0 (default: 1).",
    )
    parser.add_argument(
        "--top", type=int, default=10, metavar="N", help="Busiest channels to show (default: 10)."
    )
    add_url_argument(parser)
    parser.set_defaults(handler=handle_monitor)


def _rates(current: dict[str, Any], previous: dict[str, Any] | None, elapsed: float) -> dict[str, float]:
    if previous is None or elapsed <= 0:
        return {k: float((current.get("rates") or {}).get(k, 0.0)) for k in RATE_KEYS}
    now, before = current.get("totals") or {}, previous.get("totals") or {}
    return {k: max(0, int(now.get(k, 0)) - int(before.get(k, 0))) / elapsed for k in RATE_KEYS}


def _top(channels: dict[str, int], count: int) -> list[tuple[str, int]]:
    return sorted(channels.items(), key=lambda item: (-item[1], item[0]))[:count]


def plain_line(stats: dict[str, Any], rates: dict[str, float], top: int) -> str:
    """One refresh as a single line (stdout is not a terminal)."""
    totals = stats.get("totals") or {}
    channels = stats.get("channels") or {}
    busiest = ",".join(f"{name}:{n}" for name, n in _top(channels, top)) or "-"
    return (
        f"[{time.strftime('%H:%M:%S')}] connections={stats.get('connections', 0)} channels={len(channels)} "
        f"subscriptions={totals.get('subscriptions', sum(channels.values()))} "
        f"presence={stats.get('presence_members', 0)} nodes={len(stats.get('nodes') or [])} "
        f"in={format_rate(rates['messages_in'])} out={format_rate(rates['deliveries'])} "
        f"frames={format_rate(rates['frames_in'])} top={busiest}"
    )


def screen(
    stats: dict[str, Any], rates: dict[str, float], top: int, source: str, elapsed: float, duration: float
) -> str:
    """One refresh as a full-screen view (stdout is a terminal)."""
    totals = stats.get("totals") or {}
    channels = stats.get("channels") or {}
    lines = [
        f"📈 Broadcasting Monitor: {source}",
        f"   {format_duration(elapsed)} of {format_duration(duration)} (Ctrl-C to stop)",
        "================================",
        f"🔌 Connections: {stats.get('connections', 0)}   📡 Channels: {len(channels)}   "
        f"🔗 Subscriptions: {totals.get('subscriptions', sum(channels.values()))}",
        f"👥 Presence Members: {stats.get('presence_members', 0)}   🖥️  Nodes: {len(stats.get('nodes') or [])}",
        "",
        "📈 Message Rates:",
        f"  • Broadcasts in: {format_rate(rates['messages_in'])}",
        f"  • Deliveries out: {format_rate(rates['deliveries'])}",
        f"  • Client frames in: {format_rate(rates['frames_in'])}",
        "",
        f"📡 Busiest Channels (top {top}):",
    ]
    lines += [f"  • {name}: {n} connections" for name, n in _top(channels, top)] or ["  (no active channels)"]
    nodes = stats.get("nodes") or []
    if len(nodes) > 1:
        lines += ["", "🖥️  Nodes:"]
        lines += [f"  • {n.get('node')}: {n.get('connections', 0)} connections" for n in nodes]
    return CLEAR + "\n".join(lines)


def handle_monitor(command: BaseCommand, options: dict[str, Any]) -> None:
    duration = positive(options.get("duration"), "--duration")
    interval = positive(options.get("interval"), "--interval")
    top = int(positive(options.get("top") or 10, "--top", integer=True))
    url = options.get("url")
    tty = command.stdout.isatty()
    source = stats_url(url)
    previous: dict[str, Any] | None = None
    previous_at = 0.0
    refreshes = 0
    started = time.monotonic()
    if not tty:
        say(command, f"📈 Monitoring {source} for {duration:g}s, every {interval:g}s (Ctrl-C to stop)")
    try:
        while True:
            stats = fetch_stats(url)
            now = time.monotonic()
            rates = _rates(stats, previous, now - previous_at)
            previous, previous_at = stats, now
            refreshes += 1
            elapsed = now - started
            if tty:
                say(command, screen(stats, rates, top, source, elapsed, duration))
            else:
                say(command, plain_line(stats, rates, top))
            if elapsed >= duration:
                break
            # Refresh on a fixed schedule, and once more exactly at the end of the duration.
            wake = min(started + refreshes * interval, started + duration)
            time.sleep(max(0.0, wake - time.monotonic()))
    except KeyboardInterrupt:
        say(command, "")
        say(command, f"⏹️  Monitoring stopped after {format_duration(time.monotonic() - started)}")
        return
    say(command, f"✅ Monitoring finished after {format_duration(time.monotonic() - started)}")
