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
(from its own listening socket on Linux) or on its first request or connection, and rewrites it every few seconds while the record is missing or
names a process that has exited or an address where nothing listens (``runserver``'s autoreload
and uvicorn's workers replace processes on the same port). It never takes the record from
another live server of the project (``server/announce.py``).
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
    "server_identity",
]

#: The project the publisher expects the server to serve (URL-quoted).
EXPECT_PROJECT_HEADER = "X-Broadcast-Expect-Project"
#: Sent with explicit targets: the publisher's host name; the project must match only on that host.
EXPECT_HOST_HEADER = "X-Broadcast-Expect-Host"
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


# -- the serving side (the record keeper lives in server/announce.py) -----------------------------------
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
        from .backends.webclient import HTTPAnswerError

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
