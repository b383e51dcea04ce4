"""Which server a publisher reaches over the signed trigger, and proof that it is the right one.

With the in-memory default, a publisher in another process (a CLI command, a WSGI worker, a
task) posts to the server's signed trigger. Where it posts (``resolve_target()``):

1. ``TRIGGER_URL``, else ``WEBSOCKET_HOST:WEBSOCKET_PORT`` when either is configured (a
   ``BROADCASTING`` key or its environment variable): explicit settings always win.
2. Otherwise the address the project's running server recorded on this machine: a small JSON
   file in the temporary directory, named after a hash of the settings module, ``SECRET_KEY``
   and the *project* (see ``project()``), so two checkouts of one project never share a record.
3. Otherwise the default ``127.0.0.1:8080`` (``manage.py broadcast websocket``).

Every server process has an identity (``server_identity()``: node id, host name, pid, a random
instance id made at start, the project it serves and its settings module). The trigger answers
it with every accepted broadcast, and the publisher sends the project it expects in a header, so
that a server of another project refuses with HTTP 409 *before* delivering anything. For a
discovered or default target the project must match; for an explicit target only when the server
runs on this machine (a server elsewhere may live at another path). A record whose server has
exited, whose port another program or another project's server now answers, is removed, and
the error says what to set. A live server keeps its record: it writes it as soon as it listens
(``serving_started()``, from its own listening socket on Linux) or on its first request or
connection (``serve_at()``), and rewrites it every few seconds while the record is missing or
names a process that has exited or an address where nothing listens (``runserver``'s autoreload
and uvicorn's workers replace processes on the same port). It never takes the record from
another live server of the project.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import secrets
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings

from .conf import broadcasting_settings, on_reload
from .exceptions import TransportError

__all__ = [
    "EXPECT_HOST_HEADER",
    "EXPECT_PROJECT_HEADER",
    "Target",
    "project",
    "record_path",
    "record_server",
    "refusal",
    "resolve_target",
    "serve_at",
    "server_identity",
]

#: The project the publisher expects the server to serve (URL-quoted).
EXPECT_PROJECT_HEADER = "X-Broadcast-Expect-Project"
#: Sent with explicit targets: the publisher's host name; the project must match only on that host.
EXPECT_HOST_HEADER = "X-Broadcast-Expect-Host"
#: Seconds between a serving process's checks of its record.
REFRESH_INTERVAL = 2.0

START_HINT = "start this project's server ('manage.py runserver' or 'manage.py broadcast websocket')"
SET_HINT = "point BROADCAST_WEBSOCKET_HOST/BROADCAST_WEBSOCKET_PORT (or BROADCAST_TRIGGER_URL) at this project's server"


# -- who this process is ------------------------------------------------------------------------------
_instance: tuple[int, str] | None = None
_project: str | None = None


def instance_id() -> str:
    """Return this process's random instance id (a forked worker gets its own)."""
    global _instance
    pid = os.getpid()
    if _instance is None or _instance[0] != pid:
        _instance = (pid, secrets.token_hex(8))
    return _instance[1]


def _project_dir() -> str:
    """The real path of the directory that holds the settings module's top package.

    For ``example_project.settings`` in ``/home/me/shop/example_project/settings.py`` that is
    ``/home/me/shop`` (where ``manage.py`` usually sits): two checkouts differ, symlinks do not.
    """
    module = settings.SETTINGS_MODULE
    origin = getattr(sys.modules.get(module or ""), "__file__", None)
    if module and not origin:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec else None
    if module and origin and os.path.isfile(origin):
        path = Path(origin).resolve()
        depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
        if depth < len(path.parents):
            return str(path.parents[depth])
    return str(Path.cwd().resolve())  # settings.configure(): the working directory


def project() -> str:
    """Return what identifies this project: ``PROJECT`` when set, else the project directory."""
    global _project
    if _project is None:
        _project = broadcasting_settings.PROJECT or _project_dir()
    return _project


def _forget_project() -> None:
    global _project
    _project = None


on_reload(_forget_project)


def node_id() -> str:
    """Return this process's node id (the hub's: ``NODE_ID`` or ``<host name>:<pid>``)."""
    return broadcasting_settings.NODE_ID or f"{socket.gethostname()}:{os.getpid()}"


def server_identity() -> dict[str, Any]:
    """Return who this server process is; the trigger answers it with every accepted broadcast."""
    return {
        "node": node_id(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "instance": instance_id(),
        "project": project(),
        "settings": settings.SETTINGS_MODULE,
    }


def describe_server(identity: dict[str, Any]) -> str:
    """``node h:42, project /srv/shop`` for messages."""
    return f"node {identity.get('node', '?')}, project {identity.get('project', '?')}"


# -- the record -----------------------------------------------------------------------------------------
def record_path() -> Path:
    """Return the path of this project's record (one per settings module, secret and project)."""
    key = f"{settings.SETTINGS_MODULE}:{settings.SECRET_KEY}:{project()}".encode()
    return Path(tempfile.gettempdir()) / f"django-broadcasting-{hashlib.sha256(key).hexdigest()[:16]}.json"


def record_server(host: str, port: int) -> None:
    """Record this process as the project's local server (best effort, never raises)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    path = record_path()
    try:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"host": host, "port": int(port), **server_identity()}))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass


def read_record() -> dict[str, Any] | None:
    """Return this project's record when this user wrote it on this host, else None."""
    path = record_path()
    try:
        if path.stat().st_uid != os.getuid():
            return None
        record = json.loads(path.read_text())
        record["port"], record["pid"] = int(record["port"]), int(record["pid"])
        if not isinstance(record["host"], str):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.get("project") != project() or record.get("hostname") != socket.gethostname():
        return None
    return record


def forget_record(record: dict[str, Any]) -> None:
    """Remove the record, unless a server has rewritten it since ``record`` was read."""
    current = read_record()
    if current is not None and current.get("instance") == record.get("instance"):
        try:
            record_path().unlink()
        except OSError:
            pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except (OSError, ValueError, OverflowError):
        return False
    return True


# -- the serving side -----------------------------------------------------------------------------------
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


def refusal(expected_project: str | None, expected_host: str | None) -> dict[str, Any] | None:
    """Return the HTTP 409 body when a publisher expected another project's server, else None.

    The trigger calls this after verifying the signature and before delivering anything.
    """
    if not expected_project:
        return None
    wanted = unquote(expected_project)
    mine = project()
    if wanted == mine:
        return None
    if expected_host and unquote(expected_host) != socket.gethostname():
        return None  # the publisher runs elsewhere: paths need not match
    return {
        "error": {
            "code": "wrong_project",
            "message": f"This server serves the project {mine}, not {wanted}.",
        },
        "server": server_identity(),
    }


# -- the publishing side ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where a publisher posts, and why there: ``source`` is the setting, ``record`` or ``default``."""

    url: str
    source: str
    record: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def explicit(self) -> bool:
        return self.source not in ("record", "default")

    @property
    def address(self) -> str:
        return urlsplit(self.url).netloc or self.url

    def headers(self) -> dict[str, str]:
        """Headers that make a server of another project refuse before it delivers."""
        headers = {EXPECT_PROJECT_HEADER: quote(project(), safe="")}
        if self.explicit:
            headers[EXPECT_HOST_HEADER] = quote(socket.gethostname(), safe="")
        return headers

    def failed(self, exc: TransportError) -> TransportError:
        """Return the one-line error for a failed post, removing the record when it is stale."""
        from .http.client import HTTPAnswerError

        if isinstance(exc, HTTPAnswerError) and exc.status == 409 and isinstance(exc.payload, dict):
            return TransportError(self._wrong_project(exc.payload.get("server") or {}))
        detail, record = exc.detail.rstrip("."), self.record
        if self.explicit:
            return TransportError(
                f"{detail} (set by {self.source}: start this project's server there, or {SET_HINT})."
            )
        if record is None:
            return TransportError(
                f"{detail} (no server of project {project()} has recorded its address on this machine: "
                f"{START_HINT}, or {SET_HINT})."
            )
        recorded = f"this project's server that recorded this address, pid {record['pid']},"
        if isinstance(exc, HTTPAnswerError):  # something answers there, but not this project's trigger
            forget_record(record)
            state = f"{recorded} no longer answers there"
        elif not pid_alive(record["pid"]):
            forget_record(record)
            state = f"{recorded} has exited"
        else:
            state = f"{recorded} is still running but does not answer"
        return TransportError(f"{detail} ({state}: {START_HINT}, or {SET_HINT}).")

    def _wrong_project(self, identity: dict[str, Any]) -> str:
        other = f"The broadcast server at {self.address} serves another project ({describe_server(identity)})"
        if self.explicit:
            return (
                f"{other}, not this one ({project()}), and {self.source} points there: {SET_HINT}, "
                f"or give both the same BROADCAST_PROJECT if they are one project."
            )
        if self.record is not None:
            forget_record(self.record)
            return (
                f"{other}; this project's server that recorded this address (pid {self.record['pid']}) is gone: "
                f"{START_HINT}, or {SET_HINT}."
            )
        return (
            f"{other}, and no server of project {project()} has recorded its address on this machine: "
            f"{START_HINT}, or {SET_HINT}."
        )

    def accepted(self, answer: Any) -> str:
        """Check the trigger's answer; return who accepted the broadcast, or raise ``TransportError``."""
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            raise TransportError(
                f"The broadcast server at {self.url} did not accept the broadcast: {answer!r:.200}"
            )
        identity = answer.get("server")
        if not isinstance(identity, dict):
            if not self.explicit:  # a discovered server must prove who it is
                raise TransportError(
                    f"The server at {self.address} accepted the broadcast without saying which project it "
                    f"serves (another program?): {SET_HINT}."
                )
            return f"the server at {self.address}"
        # The server checked our header already; this also catches a server that ignores it.
        mismatch = identity.get("project") != project() and (
            not self.explicit or identity.get("hostname") == socket.gethostname()
        )
        if mismatch:
            raise TransportError(self._wrong_project(identity))
        return f"the server at {self.address} ({describe_server(identity)})"


def resolve_target(url: str | None = None) -> Target:
    """Return where this process posts trigger requests (see the module docstring)."""
    if url:
        return Target(url, "the given URL")
    if broadcasting_settings.TRIGGER_URL:
        return Target(broadcasting_settings.TRIGGER_URL, "BROADCAST_TRIGGER_URL")
    host, port = broadcasting_settings.WEBSOCKET_HOST, broadcasting_settings.WEBSOCKET_PORT
    explicit = [
        f"BROADCAST_{name}"
        for name in ("WEBSOCKET_HOST", "WEBSOCKET_PORT")
        if broadcasting_settings.is_explicit(name)
    ]
    source, record = " and ".join(explicit), None
    if not explicit:
        record = read_record()  # this project's server on this machine, if it recorded itself
        if record is not None:
            source, host, port = "record", record["host"], record["port"]
        else:
            source = "default"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return Target(f"http://{host}:{port}/api/broadcast/events", source, record)
