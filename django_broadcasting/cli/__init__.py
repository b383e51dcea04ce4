"""The ``manage.py broadcast`` subcommands, one module per concern.

- ``publish``: ``test``, ``ping``, ``notify:user``, ``system:alert`` (through the configured driver)
- ``serve``: ``websocket`` (daphne or uvicorn serving ``django_broadcasting.asgi:application``)
- ``inspection``: ``stats``, ``channels`` (a running server's ``GET /api/broadcast/stats``)
- ``monitor``: ``monitor`` (a live view of that, refreshed)
- ``doctor``: ``doctor`` (the setup and what is misconfigured, on one screen)

Each module has ``register(subparsers)``, which adds its parsers and sets ``handler`` on
each. Errors a user can act on (server down, Redis down, a bad argument) become one
``CommandError`` line and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

__all__ = ["add_subcommands", "run", "SubcommandParser"]

Handler = Callable[[BaseCommand, dict[str, Any]], None]


class SubcommandParser(CommandParser):
    """A subcommand's parser: a bad argument is one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if getattr(self, "called_from_command_line", False):
            self.exit(2, f"CommandError: {self.prog}: {message} (see --help)\n")
        raise CommandError(f"Error: {message}")


def add_subcommands(parser: CommandParser) -> None:
    """Add every subcommand to the ``broadcast`` command's parser."""
    from . import doctor, inspection, monitor, publish, serve

    subparsers = parser.add_subparsers(
        dest="subcommand",
        required=True,
        metavar="<subcommand>",
        title="subcommands",
        parser_class=SubcommandParser,
    )
    publish.register_test(subparsers)
    serve.register(subparsers)
    inspection.register_stats(subparsers)
    publish.register_ping(subparsers)
    inspection.register_channels(subparsers)
    publish.register_notify(subparsers)
    publish.register_alert(subparsers)
    monitor.register(subparsers)
    doctor.register(subparsers)


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    """Run the handler of the subcommand the options name."""
    handler: Handler | None = options.get("handler")
    if handler is None:
        raise CommandError("Give a subcommand; see 'manage.py broadcast --help'.")
    from ..context import broadcast_origin

    # What the publishing commands send is shown as "cli" in the admin's debug console (not
    # ``serve``: a server started from here publishes for its clients, not for the command).
    label = "cli" if getattr(handler, "__module__", "") == f"{__name__}.publish" else None
    with broadcast_origin(label):
        handler(command, options)
