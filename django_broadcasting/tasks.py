"""Queued broadcasts through Django's Tasks framework.

Two frameworks exist: ``django.tasks`` (Django 6) and the ``django-tasks`` backport (Django 5.2,
also installable on 6). A task object belongs to one of them and only that framework's backends
accept it, so the task is built per backend alias, with the framework that alias's ``BACKEND``
class comes from (``framework_for``). The task receives the already validated messages in their transport form (JSON), so a worker
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
from django.core.signals import setting_changed

from .exceptions import BroadcastingImproperlyConfigured, TransportError
from .messages import Message

logger = logging.getLogger("django_broadcasting.tasks")

#: The name workers import the task by: ``django_broadcasting.tasks.broadcast_messages``.
TASK_NAME = "broadcast_messages"

# The same in django.tasks and the backport.
DEFAULT_TASK_BACKEND_ALIAS = DEFAULT_TASK_QUEUE_NAME = "default"

#: Callables ``(messages, driver, queue, backend) -> bool`` consulted before queueing; one that
#: returns True has taken the messages (``testing.BroadcastFake`` records them).
queue_interceptors: list[Any] = []

_RETRYABLE = (TransportError, ConnectionError, OSError, asyncio.TimeoutError)


def publish_with_retries(
    messages: Sequence[Message], driver: str | None, tries: int = 1, timeout: float | None = None
) -> None:
    """Publish as one batch, retrying transport failures up to ``tries`` times.

    Without ``timeout`` the backend's sync side runs (no event loop; its own socket timeouts
    bound each attempt); with one, each attempt runs on the async side under ``wait_for``.
    """
    from .publishing import apublish, publish

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
    except _RETRYABLE as exc:
        # An expected operational failure (server down, timeout): one line, no traceback.
        logger.error("Queued broadcast of %d message(s) via %r failed: %s", len(built), driver, exc)
        raise
    except Exception:
        logger.exception("Queued broadcast of %d message(s) via %r failed.", len(built), driver)
        raise
    return len(built)


def _broadcast_messages(
    driver: str | None, messages: list[dict[str, Any]], tries: int = 1, timeout: float | None = None
) -> int:
    """Publish queued ``messages`` (transport dicts) through driver alias ``driver``."""
    return _publish_transport(driver, messages, tries, timeout)


# Both frameworks name a task by ``module.qualname``: workers import ``broadcast_messages`` below.
_broadcast_messages.__name__ = _broadcast_messages.__qualname__ = TASK_NAME


def framework_for(alias: str | None = None) -> Any:
    """Return the tasks framework module (``django.tasks`` or ``django_tasks``) serving backend ``alias``.

    The framework the alias's ``BACKEND`` class belongs to; without a ``TASKS`` entry, ``django.tasks``
    when Django has it, else the backport. None when neither is installed.
    """
    from django.conf import settings
    from django.utils.module_loading import import_string

    try:
        import django.tasks as core
        from django.tasks.backends.base import BaseTaskBackend as CoreBase
    except ImportError:  # Django 5.2
        core = CoreBase = None
    try:
        import django_tasks as backport
        from django_tasks.backends.base import BaseTaskBackend as BackportBase
    except ImportError:  # pragma: no cover - the backport is a dependency
        backport = BackportBase = None
    path = (
        (getattr(settings, "TASKS", None) or {}).get(alias or DEFAULT_TASK_BACKEND_ALIAS, {}).get("BACKEND")
    )
    if path:
        try:
            backend_class = import_string(path)
        except ImportError:
            backend_class = None  # the framework reports it, naming the path
        if isinstance(backend_class, type):
            if CoreBase is not None and issubclass(backend_class, CoreBase):
                return core
            if BackportBase is not None and issubclass(backend_class, BackportBase):
                return backport
        if path.startswith("django_tasks.") and backport is not None:
            return backport
    return core if core is not None else backport


_tasks: dict[tuple[str, str, str], Any] = {}


def task_for_backend(alias: str | None = None, queue: str | None = None) -> Any:
    """Return the broadcast task bound to backend ``alias`` and ``queue`` (None without a tasks framework).

    Built by that backend's framework (and validated by the backend) on first use, then cached
    until ``TASKS`` changes.
    """
    alias = alias or DEFAULT_TASK_BACKEND_ALIAS
    queue = queue or DEFAULT_TASK_QUEUE_NAME
    framework = framework_for(alias)
    if framework is None:  # pragma: no cover
        return None
    key = (framework.__name__, alias, queue)
    if key not in _tasks:
        _tasks[key] = framework.task(_broadcast_messages, backend=alias, queue_name=queue)
    return _tasks[key]


def _reset_tasks(**kwargs: Any) -> None:
    if kwargs.get("setting") in (None, "TASKS"):
        _tasks.clear()


setting_changed.connect(_reset_tasks, dispatch_uid="django_broadcasting.tasks")


class _OneLineTransportFailures(logging.Filter):
    """Drop the framework's traceback for our task's transport failures: they are logged on one line.

    Both frameworks log a failed task with ``logger.exception``; for a broadcast that found no server
    that is a long traceback after our own one-line error. Other failures keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        args = record.args if isinstance(record.args, tuple) else ()
        if isinstance(exc, _RETRYABLE) and any(str(a).endswith(f"{__name__}.{TASK_NAME}") for a in args):
            record.exc_info = None
            record.exc_text = None
        return True


for _framework_logger in ("django_tasks", "django.tasks"):
    logging.getLogger(_framework_logger).addFilter(_OneLineTransportFailures())


def __getattr__(name: str) -> Any:
    # ``broadcast_messages``: the task of the default backend, built when first asked for (a worker
    # imports it by this dotted path), so importing this module never reads settings.
    if name == TASK_NAME:
        return task_for_backend(DEFAULT_TASK_BACKEND_ALIAS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def broadcast_task_for(queue: str | None = None, backend: str | None = None) -> Any:
    """Return the broadcast task bound to ``backend`` / ``queue`` (None without a Tasks framework).

    Raise ``BroadcastingImproperlyConfigured`` when the ``TASKS`` setting does not allow them.
    """
    try:
        return task_for_backend(backend, queue)
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
    for intercept in list(queue_interceptors):  # BroadcastFake: record instead of queueing
        if intercept(
            messages, driver, queue or DEFAULT_TASK_QUEUE_NAME, backend or DEFAULT_TASK_BACKEND_ALIAS
        ):
            return None
    configured = broadcast_task_for(queue, backend)
    if configured is None:
        publish_with_retries(messages, driver, tries, timeout)
        return None
    return configured.enqueue(driver, [m.to_transport() for m in messages], tries, timeout)
