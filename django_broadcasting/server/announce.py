"""How a serving process tells publishers on this machine where it listens, and keeps telling.

A server writes this project's discovery record (``django_broadcasting.discovery``) as soon as
it listens: ``serving_started()`` runs at uvicorn's lifespan startup and when daphne's reactor
starts (``runserver`` too), and reads the process's one listening TCP socket from ``/proc`` on
Linux. Elsewhere, or with several listening ports, the first request or connection tells it
(``serve_at()``). A daemon thread then checks the record every ``REFRESH_INTERVAL`` seconds and
writes it again when it is missing (a publisher removed it as stale), names a process that has
exited (the previous ``runserver`` child, a crashed worker) or an address where nothing listens;
while another live server of the project holds it, it is left alone.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

from ..discovery import instance_id, pid_alive, read_record, record_server

__all__ = ["listening_address", "serve_at", "serving_started", "stop_serving", "when_daphne_serves"]

#: Seconds between a serving process's checks of its record.
REFRESH_INTERVAL = 2.0

#: Seconds a starting server looks for its listening socket before it waits for its first request.
PROBE_FOR = 30.0


class _Keeper:
    """One per serving process: learns the address, records it, and keeps the record."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.address: tuple[str, int] | None = None
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="django-broadcasting-record", daemon=True)

    def claim(self) -> None:
        """Record this process, unless another live server of the project holds the record."""
        if self.address is None:
            return
        host, port = self.address
        record = read_record()
        if record is not None and record["pid"] != os.getpid():
            if pid_alive(record["pid"]) and _accepts(record["host"], record["port"]):
                return
        elif record is not None and record.get("instance") == instance_id() and record["port"] == port:
            return  # ours already
        record_server(host, port)

    def _run(self) -> None:
        delay = 0.1
        while not self.stop.wait(delay):
            try:
                if self.address is None and time.monotonic() - self.started < PROBE_FOR:
                    self.address = listening_address()  # before the first request (Linux)
                    delay = 0.2
                if self.address is not None:
                    self.claim()
                    delay = REFRESH_INTERVAL
            except Exception:  # noqa: BLE001 - a bookkeeping thread must never die of a settings hiccup
                delay = REFRESH_INTERVAL


_keeper: _Keeper | None = None
_keeper_lock = threading.Lock()


def _the_keeper() -> _Keeper:
    global _keeper
    with _keeper_lock:
        if _keeper is None or _keeper.pid != os.getpid():  # a forked worker keeps its own
            _keeper = _Keeper()
            _keeper.thread.start()
        return _keeper


def serving_started() -> None:
    """This process has started serving: record its address as soon as it listens.

    The uvicorn lifespan startup and daphne's reactor start call this; the address comes from
    the process's own listening socket (``/proc`` on Linux). Elsewhere, or when the process
    listens on several ports, the first request or connection tells it (``serve_at()``).
    """
    _the_keeper()


def when_daphne_serves() -> None:
    """Call ``serving_started()`` once daphne's reactor runs (a no-op in other processes)."""
    if "daphne.server" not in sys.modules or "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    reactor.callWhenRunning(serving_started)


def serve_at(host: str, port: int) -> None:
    """Record this serving process at ``host:port`` (its first request or connection) and keep it.

    A daemon thread checks the record every ``REFRESH_INTERVAL`` seconds and writes it again when
    it is missing (a publisher removed it as stale), names a process that has exited (the previous
    ``runserver`` child, a crashed worker) or an address nobody listens on; while another live
    server of the project holds it, it is left alone (the first of two is the one found).
    """
    if not isinstance(port, int):  # a Unix socket: no address a publisher could use
        return
    keeper = _the_keeper()
    keeper.address = (host, port)
    keeper.claim()


def stop_serving() -> None:
    """Stop keeping the record (tests; the record itself stays for publishers to judge)."""
    global _keeper
    with _keeper_lock:
        keeper, _keeper = _keeper, None
    if keeper is not None:
        keeper.stop.set()
        keeper.thread.join(5)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def listening_address() -> tuple[str, int] | None:
    """Return the one TCP address this process listens on, from Linux's ``/proc``; None otherwise."""
    try:
        inodes = {
            link[8:-1]
            for link in (_readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd"))
            if link.startswith("socket:[")
        }
    except OSError:
        return None
    found: dict[int, str] = {}
    for table, family in (("/proc/net/tcp6", socket.AF_INET6), ("/proc/net/tcp", socket.AF_INET)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) < 10 or fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            found[int(port, 16)] = _ip(address, family)  # IPv4 read last: it wins on a dual-stack port
    if len(found) != 1:
        return None
    port, host = next(iter(found.items()))
    return host, port


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _ip(hex_address: str, family: int) -> str:
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":  # /proc prints each 32-bit word in host order
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    host = socket.inet_ntop(family, raw)
    return "127.0.0.1" if host in ("::", "0.0.0.0") else host
