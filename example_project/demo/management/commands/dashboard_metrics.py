"""``manage.py dashboard_metrics``: publish the dashboard's ``metrics_update`` from outside the server.

    python manage.py dashboard_metrics            # once
    python manage.py dashboard_metrics --every 5  # every 5 seconds until Ctrl-C

With the in-memory channel layer this reaches the server through its signed HTTP trigger;
with Redis, through Redis. ``active_users`` counts this process's connections, so it reads 0.
"""

from __future__ import annotations

import time

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand, CommandError

from ...metrics import apublish_metrics


class Command(BaseCommand):
    help = "Publish the live dashboard's metrics_update on admin.dashboard (once, or --every N seconds)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--every", type=float, default=None, help="Repeat every N seconds.")

    def handle(self, *args, every: float | None = None, **options) -> None:
        if every is not None and every <= 0:
            raise CommandError("--every must be a positive number of seconds.")
        while True:
            try:
                async_to_sync(apublish_metrics)()
            except Exception as exc:
                raise CommandError(f"Could not publish: {exc}") from None
            self.stdout.write("metrics_update sent on admin.dashboard")
            if every is None:
                return
            time.sleep(every)
