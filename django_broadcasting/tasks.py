"""Queued broadcasts through Django's Tasks framework.

``django.tasks`` (Django 6) is used when present, else the ``django-tasks`` backport (Django 5.2).
The task receives the already validated messages in their transport form (JSON), so a worker
never re-runs ``broadcast_on()`` / ``broadcast_with()``. ``tries`` attempts are made, each
limited to ``timeout`` seconds; only transport failures are retried.

With neither package installed, ``enqueue_broadcast`` publishes at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync

from .exceptions import BroadcastingImproperlyConfigured, TransportError
from .messages import Message

logger = logging.getLogger("django_broadcasting.tasks")

try:  # Django 6
    from django.tasks import task
except ImportError:  # Django 5.2 + the backport
    try:
        from django_tasks import task
    except ImportError:  # pragma: no cover - no tasks framework at all
        task = None  # type: ignore[assignment]

# The same in django.tasks and the backport.
DEFAULT_TASK_BACKEND_ALIAS = DEFAULT_TASK_QUEUE_NAME = "default"

_RETRYABLE = (TransportError, ConnectionError, OSError, asyncio.TimeoutError)


def publish_with_retries(
    messages: Sequence[Message], driver: str | None, tries: int = 1, timeout: float | None = None
) -> None:
    """Publish as one batch, retrying transport failures up to ``tries`` times.

    Without ``timeout`` the backend's sync side runs (no event loop; its own socket timeouts
    bound each attempt); with one, each attempt runs on the async side under ``wait_for``.
    """
    from .broadcasting import apublish, publish

    async def bounded() -> None:
        await asyncio.wait_for(apublish(messages, driver), timeout)

    attempts = max(1, int(tries or 1))
    for attempt in range(1, attempts + 1):
        try:
            if timeout:
                async_to_sync(bounded)()
            else:
                publish(messages, driver)
            return
        except _RETRYABLE as exc:
            if attempt == attempts:
                raise
            logger.warning("Broadcast attempt %d/%d failed (%s); retrying.", attempt, attempts, exc)
            time.sleep(min(0.1 * 2 ** (attempt - 1), 2.0))


def _publish_transport(
    driver: str | None, messages: list[dict[str, Any]], tries: int = 1, timeout: float | None = None
) -> int:
    """Rebuild transported messages and publish them as one batch; return how many were sent."""
    built = [Message.from_transport(payload) for payload in messages]
    try:
        publish_with_retries(built, driver, tries, timeout)
    except Exception:
        logger.exception("Queued broadcast of %d message(s) via %r failed.", len(built), driver)
        raise
    return len(built)


if task is not None:
    # Module level, as the Tasks framework requires: a worker imports the task by its dotted path.
    # Importing this module therefore reads settings.TASKS; it is only imported when a broadcast
    # is queued (or by a worker), never at django_broadcasting import time.
    @task
    def broadcast_messages(
        driver: str | None, messages: list[dict[str, Any]], tries: int = 1, timeout: float | None = None
    ) -> int:
        """Publish queued ``messages`` (transport dicts) through driver alias ``driver``."""
        return _publish_transport(driver, messages, tries, timeout)
else:  # pragma: no cover
    broadcast_messages = None


def broadcast_task_for(queue: str | None = None, backend: str | None = None) -> Any:
    """Return the broadcast task bound to ``backend`` / ``queue`` (None without a Tasks framework).

    Raise ``BroadcastingImproperlyConfigured`` when the ``TASKS`` setting does not allow them.
    """
    if broadcast_messages is None:
        return None
    try:
        return broadcast_messages.using(
            queue_name=queue or DEFAULT_TASK_QUEUE_NAME, backend=backend or DEFAULT_TASK_BACKEND_ALIAS
        )
    except Exception as exc:  # InvalidTask / InvalidTaskBackendError from either package
        raise BroadcastingImproperlyConfigured(
            f"Cannot queue broadcast on backend {backend or DEFAULT_TASK_BACKEND_ALIAS!r}, "
            f"queue {queue or DEFAULT_TASK_QUEUE_NAME!r}: {exc}"
        ) from exc


def enqueue_broadcast(
    messages: Sequence[Message],
    driver: str | None,
    *,
    queue: str | None = None,
    backend: str | None = None,
    tries: int = 1,
    timeout: float | None = None,
) -> Any:
    """Queue ``messages`` for publishing on task ``backend`` / ``queue``; return the task result."""
    configured = broadcast_task_for(queue, backend)
    if configured is None:
        publish_with_retries(messages, driver, tries, timeout)
        return None
    return configured.enqueue(driver, [m.to_transport() for m in messages], tries, timeout)
