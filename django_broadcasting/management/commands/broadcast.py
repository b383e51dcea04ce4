"""``python manage.py broadcast <subcommand>``: test, websocket, stats, ping, channels,
notify:user, system:alert, monitor and doctor. Each subcommand lives in ``django_broadcasting.cli``;
this module only wires them into Django's ``BaseCommand``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_broadcasting import cli


class Command(BaseCommand):
    help = (
        "Operate django-broadcasting: send test broadcasts, pings, notifications and alerts, run the "
        "WebSocket server, and inspect a running server's stats, channels and live activity. "
        "Run 'manage.py broadcast <subcommand> --help' for the options of each."
    )
    # The subcommands that need them run the system checks themselves (websocket serves).
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_subcommands(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        cli.run(self, options)
