"""Where a publisher on this machine finds the running server, when nothing says.

With the in-memory default, a publisher in another process (a CLI command, a WSGI worker,
a task) posts to the server's signed trigger at ``WEBSOCKET_HOST:WEBSOCKET_PORT``. When
neither is configured (no ``BROADCASTING`` key and no environment variable), the publisher
uses the address that the last server of this project on this machine recorded when it
took its first request, or, under daphne's ``manage.py runserver``, as it starts (read from its
command line), so a publisher run before anyone opened a page finds it too. So ``manage.py
runserver`` (port 8000) and ``manage.py broadcast websocket`` (port 8080) both just work; an
explicit setting always wins.

The record is a small JSON file in the temporary directory, named after a hash of the
project's ``SECRET_KEY`` and settings module. It is trusted only when this user owns it
and its server process is still alive.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
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


def record_runserver(argv: Sequence[str] | None = None) -> None:
    """Under daphne's ``manage.py runserver``, record the address it is about to serve.

    Called when the app loads, in the process that will serve (and in runserver's reloader, which
    lives as long as it). Without it, the server is found only once it took a request. Best
    effort: another command, Django's own (WSGI) runserver, an IPv6 address or arguments the
    command would refuse record nothing.
    """
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] != "runserver":
        return
    try:
        from django.core.management import get_commands, load_command_class
        from django.core.management.commands.runserver import naiveip_re

        if get_commands().get("runserver") != "daphne":
            return  # Django's own runserver serves no WebSockets and no broadcasting hub
        command = load_command_class("daphne", "runserver")
        options = command.create_parser(os.path.basename(argv[0]), "runserver").parse_args(argv[2:])
        if not getattr(options, "use_asgi", True) or getattr(options, "use_ipv6", False):
            return
        host, port = command.default_addr, int(command.default_port)
        if options.addrport:
            match = naiveip_re.match(options.addrport)
            if match is None or match["ipv6"]:
                return
            host, port = match["addr"] or host, int(match["port"])
    except Exception:  # the command itself reports bad arguments; this only guesses
        return
    record_server(host, port)


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
