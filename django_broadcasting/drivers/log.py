"""``LogDriver``: writes one readable line per message; for development and auditing.

Lines go to the ``django_broadcasting.log`` logger at INFO (``LEVEL`` option), so the
project's ``LOGGING`` decides where they end up. Two options add handlers of the driver's
own, each attached once per process however often the driver is re-created:

* ``"stream"`` (default ``True``): also print to the console (stderr), unless the
  ``LOGGING`` setting already gives this logger (or an ancestor) a handler: then the line
  is printed by that handler and printing it again would double it.
* ``"file"``: a path; also append to that file.

A line reads like Laravel's log broadcaster::

    Broadcasting [announcement] on channel [general] with payload: {"text":"hi"}
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import BroadcastingImproperlyConfigured
from .base import BaseDriver

if TYPE_CHECKING:
    from ..messages import Message

LOGGER_NAME = "django_broadcasting.log"
logger = logging.getLogger(LOGGER_NAME)

# Handlers this module attached, keyed by target, so re-creating drivers never duplicates lines.
_handlers: dict[str, logging.Handler] = {}
_handlers_lock = threading.Lock()
_FORMAT = "%(asctime)s %(message)s"


def _attach(key: str, factory: Any) -> None:
    with _handlers_lock:
        if key in _handlers:
            return
        handler = factory()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.setLevel(logging.DEBUG)
        _handlers[key] = handler
        logger.addHandler(handler)


def detach_handlers() -> None:
    """Remove and close every handler this module attached (tests, shutdown)."""
    with _handlers_lock:
        for handler in _handlers.values():
            logger.removeHandler(handler)
            handler.close()
        _handlers.clear()


def format_message(message: Message) -> str:
    """Return the one-line description of ``message``."""
    line = f"Broadcasting [{message.event}] on channel [{message.channel}] with payload: {message.data_json}"
    if message.socket_id:
        line += f" (except socket {message.socket_id})"
    return line


class LogDriver(BaseDriver):
    """Log every message instead of delivering it."""

    name = "log"

    def describe(self) -> str:
        return "the log driver (written to the log; no server receives it)"

    def __init__(self, alias: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(alias, options)
        level = self.options.get("LEVEL", self.options.get("level", "INFO"))
        resolved = logging.getLevelName(level) if isinstance(level, str) else level
        if not isinstance(resolved, int):
            raise BroadcastingImproperlyConfigured(
                f"BROADCASTING['DRIVERS'][{alias!r}]['OPTIONS']['LEVEL']: unknown log level {level!r}."
            )
        self.level: int = resolved
        if logger.level == logging.NOTSET or logger.level > self.level:
            # Without this the root logger's WARNING default would drop every INFO line.
            logger.setLevel(self.level)
        stream = self.options.get("stream", self.options.get("STREAM", True))
        if stream and ("stream" in _handlers or not logger.hasHandlers()):
            _attach("stream", lambda: logging.StreamHandler(sys.stderr))
        path = self.options.get("file", self.options.get("FILE"))
        if path:
            path = str(path)
            _attach(f"file:{path}", lambda: logging.FileHandler(path, encoding="utf-8", delay=True))

    async def abroadcast(self, messages: Sequence[Message]) -> None:
        for message in messages:
            logger.log(self.level, format_message(message))
