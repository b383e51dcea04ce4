"""Real server processes for integration tests: daphne or uvicorn serving the example project.

A ``ServerProcess`` runs ``python -m daphne`` / ``python -m uvicorn`` on a free port of
127.0.0.1 with its own environment, waits until the port accepts connections (polling with a
deadline, never a fixed sleep), keeps the server's output in a log file that failures show, and
stops its own process group (SIGTERM, then SIGKILL)::

    with ServerProcess("daphne", env={"JWT_SECRET": "s3cret"}) as server:
        httpx.get(server.url("/admin/login/"))
        websockets.connect(server.ws_url("/ws?channel=general"))

Kinds: ``daphne``; ``uvicorn`` (uvicorn's own ``websockets-sansio`` WebSocket protocol); and
``uvicorn-front`` (this project's, ``django_broadcasting/server/front/uvicorn.py``). ``ws=`` names
any other ``--ws`` for a uvicorn kind.

The pytest fixtures built on it live in ``tests/conftest.py``.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
ASGI_APP = "example_project.asgi:application"
SERVER_KINDS = ("daphne", "uvicorn", "uvicorn-front")
#: uvicorn's ``--ws`` per kind: ``uvicorn`` runs uvicorn's own websockets-sansio protocol,
#: ``uvicorn-front`` this project's (``django_broadcasting/server/front/uvicorn.py``).
FRONT_WS = "django_broadcasting.server.front.uvicorn:WebSocketProtocol"
UVICORN_WS = {"uvicorn": "websockets-sansio", "uvicorn-front": FRONT_WS}

# The secret server processes use unless a test passes its own JWT_SECRET; tests mint tokens with it.
TEST_JWT_SECRET = "integration-test-jwt-secret-0123456789abcdef"

# Variables django_broadcasting.conf and the example settings read: a server starts from a clean
# slate (plus what the test passes), whatever the developer's shell exports.
_CONFIG_ENV_PREFIXES = ("BROADCAST_", "JWT_", "PUSHER_", "DJANGO_")
_CONFIG_ENV_NAMES = {"CORS_ALLOWED_ORIGINS", "DATABASE_PATH"}


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout: float, interval: float = 0.05, message: str = "condition") -> None:
    """Poll ``predicate()`` until it is true; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {message}")
        time.sleep(interval)


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a server process: ours without broadcasting config, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_CONFIG_ENV_PREFIXES) and key not in _CONFIG_ENV_NAMES
    }
    env["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("JWT_SECRET", TEST_JWT_SECRET)
    if extra:
        env.update({key: str(value) for key, value in extra.items()})
    return env


def run_manage(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run ``manage.py <args>`` in a child process with ``server_env(env)``; its output, or raise."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), *args],
        cwd=REPO_ROOT,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def create_user(
    db_path: str | os.PathLike[str],
    username: str,
    password: str,
    *,
    is_staff: bool = False,
    is_superuser: bool = False,
) -> int:
    """Create (or reset) a user in the SQLite file server processes use; returns the user's id."""
    code = (
        "from django.contrib.auth import get_user_model\n"
        f"u, _ = get_user_model().objects.get_or_create(username={username!r})\n"
        f"u.set_password({password!r}); u.is_staff = {is_staff!r}; u.is_superuser = {is_superuser!r}\n"
        "u.save(); print(u.pk)\n"
    )
    out = run_manage("shell", "-v", "0", "-c", code, env={"DATABASE_PATH": str(db_path)})
    return int(out.strip().splitlines()[-1])


class ServerProcess:
    """One daphne or uvicorn process serving an ASGI application on 127.0.0.1."""

    def __init__(
        self,
        kind: str = "daphne",
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        app: str = ASGI_APP,
        args: Sequence[str] = (),
        log_path: str | os.PathLike[str] | None = None,
        ready_path: str | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        ws: str | None = None,
    ) -> None:
        if kind not in SERVER_KINDS:
            raise ValueError(f"unknown server kind {kind!r}; expected one of {SERVER_KINDS}")
        self.kind = kind
        self.ws = ws or UVICORN_WS.get(kind)  # uvicorn's --ws (an alias or an import string)
        self.host = host
        self.port = port or free_port(host)
        self.app = app
        self.args = list(args)
        self.env = server_env(env)
        # The server's own address, where publishers without a shared channel layer reach it.
        self.env.setdefault("BROADCAST_WEBSOCKET_HOST", self.host)
        self.env.setdefault("BROADCAST_WEBSOCKET_PORT", str(self.port))
        self.ready_path = ready_path
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"{kind}-{self.port}-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.process: subprocess.Popen[bytes] | None = None

    # -- addresses ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + path

    def ws_url(self, path: str = "/ws") -> str:
        return f"ws://{self.host}:{self.port}{path}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    # -- lifecycle ------------------------------------------------------------------------
    def command(self) -> list[str]:
        if self.kind == "daphne":
            return [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                self.host,
                "-p",
                str(self.port),
                *self.args,
                self.app,
            ]
        return [
            sys.executable, "-m", "uvicorn", self.app, "--host", self.host, "--port", str(self.port),
            "--ws", self.ws, *self.args,
        ]  # fmt: skip

    def start(self) -> ServerProcess:
        """Start the process and return once it accepts connections (raise with its log if not)."""
        if self.process is not None:
            raise RuntimeError("server already started")
        if port_open(self.host, self.port):
            raise RuntimeError(f"port {self.port} is already in use")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: stop() signals exactly this server and anything it forked.
                start_new_session=True,
            )
        try:
            self.wait_ready(self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"{self.kind} exited with code {code} before listening\n{self.log_tail()}")
            if port_open(self.host, self.port) and (self.ready_path is None or self._http_ok()):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.kind} did not answer on {self.base_url} within {timeout:.0f}s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _http_ok(self) -> bool:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        try:
            conn.request("GET", self.ready_path or "/")
            return conn.getresponse().status < 500
        except OSError:
            return False
        finally:
            conn.close()

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM the server's process group, SIGKILL it after ``stop_timeout``; its exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            self._signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(process.pid, signal.SIGKILL)
                process.wait(self.stop_timeout)
        # Children left in the group (uvicorn workers, say) go too; the group id is our own PID.
        self._signal_group(process.pid, signal.SIGKILL)
        return process.returncode

    def kill(self) -> None:
        """Stop at once, as a crash would (SIGKILL, no graceful shutdown)."""
        if self.process is not None:
            self._signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(self.stop_timeout)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    # -- output ---------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_text().splitlines()[-lines:]
        return f"--- {self.kind} log ({self.log_path}) ---\n" + "\n".join(text)

    def __enter__(self) -> ServerProcess:
        return self.start() if self.process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ServerProcess {self.kind} {self.base_url} pid={self.pid}>"
