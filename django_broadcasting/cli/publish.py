"""Publishing subcommands: ``test``, ``ping``, ``notify:user`` and ``system:alert``.

They publish through the configured driver, exactly as application code does: with the
in-memory default the ``websocket`` driver posts to the running server's signed HTTP
trigger (``BROADCAST_WEBSOCKET_PORT``, or the address this project's server recorded);
with Redis it goes through Redis. Each one reports success only once a server or the
backend accepted the message, and says which (``  • Accepted by ...``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ..drivers import BaseDriver, get_driver
from ..messages import utc_now_iso
from ..publishing import (
    ALERT_LEVELS,
    SYSTEM_ALERT_CHANNEL,
    Published,
    broadcast_to_channel,
    notify_user,
    system_alert,
    user_channel,
)
from .base import friendly_errors, positive, say

TEST_EVENT = "test"
PING_EVENT = "ping"


def _driver_argument(parser: Any) -> None:
    parser.add_argument(
        "--driver",
        metavar="ALIAS",
        help="Broadcast driver alias to publish through (default: BROADCAST_DRIVER, i.e. DEFAULT_DRIVER).",
    )


def _publish(action: str, options: dict[str, Any], send: Callable[[BaseDriver], Published]) -> str:
    """Publish with ``send(driver)``; return who accepted it (the receipt), or raise a one-line ``CommandError``."""
    with friendly_errors(action):
        driver = get_driver(options.get("driver"))
        return send(driver).receipt.accepted_by


def _accepted(command: BaseCommand, accepted_by: str) -> None:
    say(command, f"  • Accepted by {accepted_by}")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CommandError(f"❌ {what} must not be empty.")
    return value


# -- test ---------------------------------------------------------------------------------------------
def register_test(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "test",
        help="Send a test broadcast (event 'test') to a channel.",
        description='Send event \'test\' with data {"message", "timestamp"} to a channel, through the '
        "configured driver, and report whether it was accepted.",
    )
    parser.add_argument("--channel", default="general", help="Channel to broadcast on (default: general).")
    parser.add_argument("--message", default="Hello World", help='Message text (default: "Hello World").')
    _driver_argument(parser)
    parser.set_defaults(handler=handle_test)


def handle_test(command: BaseCommand, options: dict[str, Any]) -> None:
    channel = _text(options["channel"], "The channel")
    message = _text(options["message"], "The message")
    say(command, f"🚀 Testing broadcast to channel: {channel}")
    accepted_by = _publish(
        "Broadcast test",
        options,
        lambda driver: broadcast_to_channel(
            channel, TEST_EVENT, {"message": message, "timestamp": utc_now_iso()}, driver=driver
        ),
    )
    say(command, "✅ Broadcast test completed successfully")
    _accepted(command, accepted_by)


# -- ping ---------------------------------------------------------------------------------------------
def register_ping(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ping",
        help="Send event 'ping' to a channel every --interval seconds (until Ctrl-C, or --count times).",
        description='Send event \'ping\' with data {"message": "ping", "sequence", "timestamp"} every '
        "--interval seconds. Runs until Ctrl-C (exit status 0) unless --count is given.",
    )
    parser.add_argument("--channel", default="general", help="Channel to ping (default: general).")
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="Seconds between pings, > 0 (default: 5).",
    )
    parser.add_argument("--count", type=int, metavar="N", help="Stop after N pings (default: until Ctrl-C).")
    _driver_argument(parser)
    parser.set_defaults(handler=handle_ping)


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """Turn Ctrl-C (SIGINT) into an event the loop checks between pings.

    A KeyboardInterrupt raised while ``async_to_sync`` waits for a publish can be swallowed
    by asgiref's executor (the loop then never stops): the ping in flight finishes instead.
    """
    stop = threading.Event()
    try:
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    except ValueError:  # not the main thread (call_command from a worker): no Ctrl-C to catch
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def handle_ping(command: BaseCommand, options: dict[str, Any]) -> None:
    channel = _text(options["channel"], "The channel")
    interval = positive(options["interval"], "--interval")
    count = options.get("count")
    if count is not None:
        count = int(positive(count, "--count", integer=True))
    until = f"{count} time{'s' if count != 1 else ''}" if count else "until Ctrl-C"
    say(command, f"🏓 Pinging channel: {channel} every {interval:g}s ({until})")
    sent = 0
    started = time.monotonic()
    with _stop_on_interrupt() as stop:
        while (count is None or sent < count) and not stop.is_set():
            if sent:
                # A fixed schedule, not sleep-after-send: slow publishes do not stretch it.
                delay = started + sent * interval - time.monotonic()
                if delay > 0 and stop.wait(delay):
                    break
            sequence = sent + 1
            accepted_by = _publish(
                f"Ping #{sequence}",
                options,
                lambda driver, n=sequence: broadcast_to_channel(
                    channel,
                    PING_EVENT,
                    {"message": "ping", "sequence": n, "timestamp": utc_now_iso()},
                    driver=driver,
                ),
            )
            sent = sequence
            say(command, f"📡 Ping #{sequence} sent to channel: {channel}")
            if sequence == 1:
                _accepted(command, accepted_by)
    if stop.is_set():
        say(command, "")
        say(command, f"⏹️  Stopped after {sent} ping{'s' if sent != 1 else ''}")
        return
    say(command, f"✅ Sent {sent} ping{'s' if sent != 1 else ''} to channel: {channel}")


# -- notify:user ------------------------------------------------------------------------------------------
def register_notify(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "notify:user",
        help="Send a notification to a user (event 'notification' on user.{USER_ID}).",
        description='Send event \'notification\' with data {"title", "message", "action_url", '
        '"timestamp"} on the user\'s private channel user.{USER_ID}.',
    )
    parser.add_argument("user_id", metavar="USER_ID", help="The user's id (the channel is user.{USER_ID}).")
    parser.add_argument("title", metavar="TITLE", help="Notification title.")
    # Positional dests differ from every option's dest: call_command() matches keyword
    # options against the positionals of all subcommands (a --message there would clash).
    parser.add_argument("notification_message", metavar="MESSAGE", help="Notification text.")
    parser.add_argument("--action-url", dest="action_url", metavar="URL", help="Link the client may open.")
    _driver_argument(parser)
    parser.set_defaults(handler=handle_notify)


def handle_notify(command: BaseCommand, options: dict[str, Any]) -> None:
    user_id = _text(options["user_id"], "USER_ID")
    title = _text(options["title"], "TITLE")
    message = _text(options["notification_message"], "MESSAGE")
    with friendly_errors("Notification"):
        channel = user_channel(user_id)
    say(command, f"🔔 Sending notification to user: {user_id}")
    accepted_by = _publish(
        "Notification",
        options,
        lambda driver: notify_user(user_id, title, message, options.get("action_url") or None, driver=driver),
    )
    say(command, f"✅ Notification sent to channel: {channel}")
    _accepted(command, accepted_by)


# -- system:alert -----------------------------------------------------------------------------------------
def register_alert(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "system:alert",
        help=f"Send a system alert (event 'system_alert' on '{SYSTEM_ALERT_CHANNEL}').",
        description='Send event \'system_alert\' with data {"level", "message", "action_required", '
        f"\"timestamp\"}} on the '{SYSTEM_ALERT_CHANNEL}' channel (identities with the admin role).",
    )
    parser.add_argument("level", metavar="LEVEL", help=f"One of: {', '.join(ALERT_LEVELS)}.")
    parser.add_argument("alert_message", metavar="MESSAGE", help="Alert text.")
    parser.add_argument(
        "--action-required",
        dest="action_required",
        action="store_true",
        help="Flag the alert as needing action.",
    )
    parser.add_argument(
        "--channel", default=SYSTEM_ALERT_CHANNEL, help=f"Channel to alert (default: {SYSTEM_ALERT_CHANNEL})."
    )
    _driver_argument(parser)
    parser.set_defaults(handler=handle_alert)


def handle_alert(command: BaseCommand, options: dict[str, Any]) -> None:
    level = str(options["level"] or "").strip().lower()
    if level not in ALERT_LEVELS:
        raise CommandError(
            f"❌ Unknown alert level {options['level']!r}: use one of {', '.join(ALERT_LEVELS)}."
        )
    message = _text(options["alert_message"], "MESSAGE")
    channel = _text(options.get("channel") or SYSTEM_ALERT_CHANNEL, "The channel")
    marker = " (action required)" if options.get("action_required") else ""
    say(command, f"🚨 Sending {level} system alert to channel: {channel}{marker}")
    accepted_by = _publish(
        "System alert",
        options,
        lambda driver: system_alert(
            level, message, bool(options.get("action_required")), channel=channel, driver=driver
        ),
    )
    say(command, "✅ System alert sent successfully")
    _accepted(command, accepted_by)
