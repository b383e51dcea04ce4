"""Inspection subcommands: ``stats`` and ``channels``, read from a running server.

Both GET the server's ``/api/broadcast/stats`` (signed like the trigger, or with
``STATS_TOKEN``); with the Redis scale-out that document already covers every node.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from ..conf import broadcasting_settings
from .base import add_url_argument, fetch_stats, format_duration, format_rate, positive, say


def _json_argument(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="Print the raw stats document as JSON instead.")


def _channel_lines(channels: dict[str, int], presence: dict[str, list], limit: int | None) -> list[str]:
    names = sorted(channels)
    lines = []
    for name in names[:limit] if limit else names:
        members = presence.get(name)
        extra = f" ({len(members)} member{'s' if len(members) != 1 else ''})" if members else ""
        # "N connections" whatever N is: the wording, kept as the output contract.
        lines.append(f"  • {name}: {channels[name]} connections{extra}")
    if limit and len(names) > limit:
        lines.append(f"  … and {len(names) - limit} more (see 'manage.py broadcast channels')")
    return lines


def _member(member: dict[str, Any]) -> str:
    info = member.get("info") if isinstance(member.get("info"), dict) else {}
    name = info.get("name")
    return f"{member.get('id')} ({name})" if name else str(member.get("id"))


def _driver_status() -> tuple[str, str]:
    from ..drivers import get_driver

    alias = broadcasting_settings.default_driver_alias()
    try:
        get_driver()
    except Exception as exc:  # any failure to build the driver is what this line reports
        return alias, f"Unavailable ({' '.join(str(exc).split())})"
    return alias, "Available"


# -- stats --------------------------------------------------------------------------------------------
def register_stats(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stats",
        help="Show a running server's statistics: channels, connections, presence, message rates, nodes.",
        description="Read GET /api/broadcast/stats of the running server (every node with Redis) and print it.",
    )
    add_url_argument(parser)
    parser.add_argument(
        "--limit", type=int, default=20, metavar="N", help="Channels to list at most (default: 20)."
    )
    _json_argument(parser)
    parser.set_defaults(handler=handle_stats)


def render_stats(stats: dict[str, Any], limit: int | None = 20) -> list[str]:
    """The ``stats`` report, line by line (the layout first, then the details)."""
    channels: dict[str, int] = stats.get("channels") or {}
    presence: dict[str, list] = stats.get("presence") or {}
    totals: dict[str, Any] = stats.get("totals") or {}
    rates: dict[str, Any] = stats.get("rates") or {}
    nodes: list[dict[str, Any]] = stats.get("nodes") or []
    alias, status = _driver_status()
    lines = [
        "📊 Broadcasting System Statistics",
        "================================",
        "📡 WebSocket Channels:",
    ]
    lines += _channel_lines(channels, presence, limit) or ["  (no active channels)"]
    lines += [
        "",
        "🔧 Broadcast Configuration:",
        f"  • Default Driver: {status}",
        f"  • Driver: {alias}",
        f"  • Total Active Channels: {len(channels)}",
        "",
        "🔌 Connections:",
        f"  • Open: {stats.get('connections', 0)}",
        f"  • Subscriptions: {totals.get('subscriptions', sum(channels.values()))}",
        f"  • Accepted since start: {totals.get('connections_total', 0)}",
        "",
        f"👥 Presence Members: {stats.get('presence_members', 0)}",
    ]
    for name in sorted(presence)[: limit or None]:
        ids = ", ".join(_member(m) for m in presence[name])
        lines.append(f"  • {name}: {ids}")
    lines += [
        "",
        "📈 Message Rates:",
        f"  • Broadcasts in: {format_rate(rates.get('messages_in'))} ({totals.get('messages_in', 0)} total)",
        f"  • Deliveries out: {format_rate(rates.get('deliveries'))} ({totals.get('deliveries', 0)} total)",
        f"  • Client frames in: {format_rate(rates.get('frames_in'))} ({totals.get('frames_in', 0)} total)",
    ]
    errors = totals.get("errors") or {}
    if errors:
        lines.append(
            "  • Errors by code: " + ", ".join(f"{code}×{count}" for code, count in sorted(errors.items()))
        )
    lines += ["", f"🖥️  Nodes: {len(nodes)}"]
    for node in nodes:
        lines.append(
            f"  • {node.get('node')}: {node.get('connections', 0)} connections, "
            f"{len(node.get('channels') or {})} channels, up {format_duration(node.get('uptime') or 0)}"
        )
    return lines


def handle_stats(command: BaseCommand, options: dict[str, Any]) -> None:
    limit = int(positive(options.get("limit") or 20, "--limit", integer=True))
    stats = fetch_stats(options.get("url"))
    if options.get("json"):
        say(command, json.dumps(stats, indent=2, sort_keys=True))
        return
    for line in render_stats(stats, limit):
        say(command, line)


# -- channels -----------------------------------------------------------------------------------------
def register_channels(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "channels",
        help="List the active channels of a running server with their subscriber counts.",
        description="List every channel with at least one subscriber (across nodes with Redis).",
    )
    add_url_argument(parser)
    parser.add_argument("--prefix", default="", help="Only channels whose name starts with this.")
    _json_argument(parser)
    parser.set_defaults(handler=handle_channels)


def handle_channels(command: BaseCommand, options: dict[str, Any]) -> None:
    stats = fetch_stats(options.get("url"))
    prefix = options.get("prefix") or ""
    channels = {name: n for name, n in (stats.get("channels") or {}).items() if name.startswith(prefix)}
    if options.get("json"):
        say(command, json.dumps(channels, indent=2, sort_keys=True))
        return
    if not channels:
        say(command, "📡 No active channels" + (f" starting with {prefix!r}" if prefix else ""))
        return
    say(command, f"📡 Active Channels: {len(channels)}")
    for line in _channel_lines(channels, stats.get("presence") or {}, None):
        say(command, line)
