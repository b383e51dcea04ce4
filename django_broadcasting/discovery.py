"""Where a publisher on this machine finds the running server, when nothing says.

With the in-memory default, a publisher in another process (a CLI command, a WSGI worker,
a task) posts to the server's signed trigger at ``WEBSOCKET_HOST:WEBSOCKET_PORT``. When
neither is configured (no ``BROADCASTING`` key and no environment variable), the publisher
uses the address that the last server of this project on this machine recorded when it
took its first request. So ``manage.py runserver`` (port 8000) and ``manage.py broadcast
websocket`` (port 8080) both just work; an explicit setting always wins.

The record is a small JSON file in the temporary directory, named after a hash of the
project's ``SECRET_KEY`` and settings module. It is trusted only when this user owns it
and its server process is still alive.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from django.conf import settings


def _path() -> Path:
    key = f"{settings.SETTINGS_MODULE}:{settings.SECRET_KEY}".encode()
    return Path(tempfile.gettempdir()) / f"django-broadcasting-{hashlib.sha256(key).hexdigest()[:16]}.json"


def record_server(host: str, port: int) -> None:
    """Record this process as the project's local server (best effort, never raises)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    path = _path()
    try:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"host": host, "port": int(port), "pid": os.getpid()}))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass


def discovered_server() -> tuple[str, int] | None:
    """Return (host, port) of this project's live local server, or None."""
    path = _path()
    try:
        if path.stat().st_uid != os.getuid():
            return None
        record = json.loads(path.read_text())
        pid = int(record["pid"])
        os.kill(pid, 0)  # raises when the server is gone
        return str(record["host"]), int(record["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
