"""Delivery of webhook events to one URL: a bounded queue drained by one background task.

The server queues an event (``enqueue``: a deque append, never a wait, never I/O) and goes on.
The sender's task gathers what is queued for ``WEBHOOK_BATCH_DELAY`` seconds (up to
``WEBHOOK_BATCH_SIZE`` events), POSTs one signed request, and on anything but a 2xx answer in
``WEBHOOK_TIMEOUT`` seconds sends the same events again after 1, 2, 4, 8, 16, 16... seconds
(with jitter, so a failed request is retried within 30 s) for ``WEBHOOK_RETRY_FOR`` seconds;
then it drops them and counts them. At most ``WEBHOOK_QUEUE_SIZE`` events wait; past that the
oldest is dropped and counted, so a dead receiver never grows memory without limit.

Requests go out with the standard library's HTTP client in a small thread pool of the sender's
own (the event loop never blocks on a socket, and ``sync_to_async``'s thread is not borrowed).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import urllib.error
import urllib.request
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from ..conf import broadcasting_settings
from . import payloads
from .config import WebhookTarget

logger = logging.getLogger("django_broadcasting.webhooks")

#: The longest wait between two attempts of one request (seconds): retries land within 30 s.
MAX_BACKOFF = 16.0
USER_AGENT = "django-broadcasting-webhooks"


@dataclass
class WebhookStats:
    """Counters of one process's webhook deliveries (stats API, ``/metrics``)."""

    events_queued: int = 0  # accepted into a queue
    events_sent: int = 0  # delivered (answered 2xx)
    events_dropped: int = 0  # dropped: queue full, or retried for WEBHOOK_RETRY_FOR in vain
    requests_ok: int = 0
    requests_failed: int = 0  # non-2xx answers, timeouts, refused connections

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirected POST would be replayed as a GET without its body: count a 3xx as a failure.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhooks")
    return _executor


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[bool, str]:
    """POST ``body``; return (answered 2xx, a one-line outcome). Blocking: run it in a thread."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except Exception as exc:  # noqa: BLE001 - refused, reset, timed out, bad URL: all a failed attempt
        reason = getattr(exc, "reason", exc)
        return False, " ".join(str(reason).split()) or type(exc).__name__
    return 200 <= status < 300, f"HTTP {status}"


def backoff(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1`` (1, 2, 4, 8, 16, 16...), jittered down by up to 20%."""
    return min(MAX_BACKOFF, 2.0 ** (attempt - 1)) * random.uniform(0.8, 1.0)


class TargetSender:
    """Queue and deliver the events of one ``WebhookTarget``."""

    def __init__(self, target: WebhookTarget, stats: WebhookStats) -> None:
        self.target = target
        self.stats = stats
        self.queue: deque[dict[str, Any]] = deque()
        self.inflight: list[dict[str, Any]] = []
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def pending(self) -> int:
        return len(self.queue) + len(self.inflight)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def enqueue(self, event: dict[str, Any]) -> None:
        """Queue ``event``; when the queue is full, drop its oldest event (counted)."""
        if len(self.queue) >= broadcasting_settings.WEBHOOK_QUEUE_SIZE:
            self.queue.popleft()
            self.stats.events_dropped += 1
            if self.stats.events_dropped == 1 or self.stats.events_dropped % 1000 == 0:
                logger.warning(
                    "webhook queue for %s is full: %d event(s) dropped so far",
                    self.target.url,
                    self.stats.events_dropped,
                )
        self.queue.append(event)
        self.stats.events_queued += 1
        self._wake.set()

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
            size = broadcasting_settings.WEBHOOK_BATCH_SIZE
            delay = broadcasting_settings.WEBHOOK_BATCH_DELAY
            if delay and len(self.queue) < size:
                await asyncio.sleep(delay)
            count = min(size, len(self.queue))
            self.inflight = [self.queue.popleft() for _ in range(count)]
            await self._deliver()

    async def _attempt(self, events: list[dict[str, Any]]) -> bool:
        body = payloads.body(events)
        timeout = broadcasting_settings.WEBHOOK_TIMEOUT
        loop = asyncio.get_running_loop()
        ok, outcome = await loop.run_in_executor(
            _pool(), post, self.target.url, body, self.target.sign(body), timeout
        )
        if ok:
            self.stats.requests_ok += 1
            self.stats.events_sent += len(events)
            self.last_error = None
        else:
            self.stats.requests_failed += 1
            self.last_error = outcome
        return ok

    async def _deliver(self) -> None:
        started = time.monotonic()
        attempt = 0
        while self.inflight:
            if await self._attempt(self.inflight):
                self.inflight = []
                return
            attempt += 1
            retry_for = broadcasting_settings.WEBHOOK_RETRY_FOR
            if retry_for and time.monotonic() - started >= retry_for:
                logger.warning(
                    "webhook to %s failed for %.0fs (%s): %d event(s) dropped",
                    self.target.url,
                    retry_for,
                    self.last_error,
                    len(self.inflight),
                )
                self.stats.events_dropped += len(self.inflight)
                self.inflight = []
                return
            delay = backoff(attempt)
            if attempt == 1 or attempt % 10 == 0:
                logger.warning(
                    "webhook to %s failed (%s); retrying in %.1fs", self.target.url, self.last_error, delay
                )
            await asyncio.sleep(delay)

    async def aclose(self, deadline: float) -> None:
        """Stop the task and try, until ``deadline`` (monotonic), to send what is still queued."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping anyway
                pass
            self._task = None
        pending = self.inflight + list(self.queue)
        self.inflight, self.queue = [], deque()
        size = broadcasting_settings.WEBHOOK_BATCH_SIZE
        while pending and time.monotonic() < deadline:
            batch, pending = pending[:size], pending[size:]
            try:
                left = max(0.1, deadline - time.monotonic())
                if not await asyncio.wait_for(self._attempt(batch), left):
                    pending = batch + pending
                    break
            except Exception:  # noqa: BLE001
                pending = batch + pending
                break
        if pending:
            self.stats.events_dropped += len(pending)
            logger.warning("webhooks to %s: %d event(s) not sent at shutdown", self.target.url, len(pending))

    def state(self) -> dict[str, Any]:
        return {"url": redacted(self.target.url), "pending": self.pending, "last_error": self.last_error}


def redacted(url: str) -> str:
    """``url`` without user info, query or fragment (stats are shared; a URL may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}"
