"""A real HTTP webhook receiver for tests: ``http.server`` on a free port, in a thread.

Every POST is kept (path, headers, raw body, arrival time) and answered with the next status
of ``statuses`` (then 200), so a test can make the first deliveries fail::

    with WebhookReceiver(statuses=[500]) as hooks:
        ...  # server started with PUSHER_WEBHOOK_URL=hooks.url
        hooks.wait_for(lambda events: any(e["name"] == "channel_occupied" for e in events))
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pusher

from tests.integration.pusher_client import APP_ID, APP_KEY, APP_SECRET
from tests.servers import free_port


@dataclass
class Delivery:
    """One request the receiver got, and the status it answered."""

    headers: dict[str, str]
    body: bytes
    status: int
    at: float  # time.monotonic()

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    """``with WebhookReceiver() as hooks``: ``hooks.url`` receives; ``hooks.deliveries`` holds what came."""

    def __init__(self, statuses: Iterable[int] = (), delay: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/pusher/webhooks"
        self.statuses = list(statuses)
        self.delay = delay  # seconds before answering (a slow receiver)
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.deliveries.append(
                        Delivery(dict(self.headers.items()), body, status, time.monotonic())
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    # -- reading what came --------------------------------------------------------------------
    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def events(self) -> list[dict[str, Any]]:
        """Events of the requests answered 2xx, in arrival order."""
        return [event for d in self.accepted() for event in d.payload["events"]]

    def named(self, name: str, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.events() if e["name"] == name and (channel is None or e.get("channel") == channel)
        ]

    def wait_for(
        self,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 10,
        message: str = "webhooks",
    ) -> list[dict[str, Any]]:
        """Poll until ``predicate(events)``; return the events, or raise with what came."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events()
            if predicate(events):
                return events
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {message}; got {events!r}")
            time.sleep(0.05)


def validator() -> pusher.Pusher:
    """The PyPI ``pusher`` SDK with the test app's credentials: its ``validate_webhook`` checks ours."""
    return pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET)


def validated(delivery: Delivery) -> dict[str, Any] | None:
    """What ``validate_webhook`` makes of a delivery (None: it rejected it)."""
    return validator().validate_webhook(
        key=delivery.headers.get("X-Pusher-Key", ""),
        signature=delivery.headers.get("X-Pusher-Signature", ""),
        body=delivery.body.decode(),
    )
