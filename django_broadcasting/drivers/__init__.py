"""Driver registry: ``BROADCASTING['DRIVERS'][alias]['BACKEND']`` dotted paths, like caches.

``drivers["redis"]`` returns the cached instance for an alias; ``get_driver()`` the default
one (``DEFAULT_DRIVER`` / ``BROADCAST_DRIVER``). ``drivers.set(alias, driver)`` swaps one in
for tests and returns the previous instance. The cache resets when settings change.
"""

from __future__ import annotations

import threading

from django.utils.module_loading import import_string

from ..conf import broadcasting_settings, on_reload
from ..exceptions import InvalidDriver
from .base import BaseDriver

__all__ = ["BaseDriver", "DriverHandler", "drivers", "get_driver"]


class DriverHandler:
    """Create drivers lazily from settings and cache one instance per alias."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drivers: dict[str, BaseDriver] = {}

    def create(self, alias: str) -> BaseDriver:
        """Instantiate the driver configured under ``alias`` (not cached)."""
        config = broadcasting_settings.DRIVERS.get(alias)
        if config is None:
            known = ", ".join(sorted(broadcasting_settings.DRIVERS))
            raise InvalidDriver(f"Unknown broadcast driver {alias!r}. Configured drivers: {known}.")
        backend = config["BACKEND"]
        try:
            driver_class = import_string(backend)
        except ImportError as exc:
            raise InvalidDriver(f"Could not import broadcast driver {alias!r} ({backend}): {exc}") from exc
        if not (isinstance(driver_class, type) and issubclass(driver_class, BaseDriver)):
            raise InvalidDriver(f"Broadcast driver {alias!r} ({backend}) is not a BaseDriver subclass.")
        return driver_class(alias, config.get("OPTIONS", {}))

    def __getitem__(self, alias: str) -> BaseDriver:
        try:
            return self._drivers[alias]
        except KeyError:
            pass
        with self._lock:
            if alias not in self._drivers:
                self._drivers[alias] = self.create(alias)
            return self._drivers[alias]

    def set(self, alias: str, driver: BaseDriver | None) -> BaseDriver | None:
        """Install ``driver`` under ``alias`` (None removes it); return the previous one."""
        with self._lock:
            old = self._drivers.pop(alias, None)
            if driver is not None:
                self._drivers[alias] = driver
            return old

    def default_alias(self) -> str:
        """Return the default driver's alias.

        The ``BROADCAST_REDIS_ENABLED=true`` next to the default ``websocket`` driver
        means "scale out through Redis": the ``redis`` driver, which carries the websocket
        hubs' traffic over Redis pub/sub, takes its place.
        """
        alias = broadcasting_settings.DEFAULT_DRIVER
        if alias == "websocket" and broadcasting_settings.REDIS_ENABLED:
            return "redis"
        return alias

    def default(self) -> BaseDriver:
        return self[self.default_alias()]

    def all(self) -> list[BaseDriver]:
        return list(self._drivers.values())

    def reset(self) -> None:
        """Forget every cached driver (connections are closed by their owners' loops)."""
        with self._lock:
            self._drivers.clear()


drivers = DriverHandler()
on_reload(drivers.reset)


def get_driver(alias: str | None = None) -> BaseDriver:
    """Return the driver for ``alias``, or the default driver."""
    return drivers[alias] if alias else drivers.default()
