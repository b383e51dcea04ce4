"""Processes the bench starts: servers under test, a private redis-server, load generators.

Every process is started in its own session and stopped by its PID (SIGTERM, then SIGKILL);
readiness is a polled TCP connect with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
BENCH_JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789"
BENCH_TRIGGER_SECRET = "bench-trigger-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def pin(pid: int, cpus: list[int]) -> None:
    """Restrict ``pid`` to ``cpus`` (a no-op on one-CPU machines or where affinity is unsupported)."""
    if (os.cpu_count() or 1) < 2:
        return
    try:
        # Every thread: affinity is per thread on Linux, and threads started before this call
        # keep their own.
        for thread in psutil.Process(pid).threads():
            os.sched_setaffinity(thread.id, cpus)
    except (AttributeError, psutil.Error, OSError):
        pass


def server_cpus() -> list[int]:
    return [0]


def loadgen_cpus() -> list[int]:
    return [(os.cpu_count() or 1) - 1]


def rss_bytes(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without broadcasting configuration, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROADCAST_", "JWT_", "DJANGO_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class Proc:
    """A child process in its own session, with its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], port: int | None) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.port = port
        fd, self.log_path = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")
        os.close(fd)
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 30.0) -> Proc:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self.port is not None and not port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Proc:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- servers under test ------------------------------------------------------------------------
#: This project's WebSocket protocol for uvicorn (``django_broadcasting/server/front/uvicorn.py``).
FRONT_WS = "django_broadcasting.server.front.uvicorn:WebSocketProtocol"


def uvicorn_argv(app: str, port: int, *, ws: str = "websockets-sansio", deflate: bool = False) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ws",
        ws,
        "--ws-per-message-deflate",
        "true" if deflate else "false",
        "--no-access-log",
        "--log-level",
        "warning",
        "--backlog",
        "4096",
    ]


def project_server(
    kind: str, *, env: Mapping[str, str] | None = None, deflate: bool = False, ws: str = FRONT_WS
) -> Proc:
    """This project's example site on uvicorn or daphne."""
    port = free_port()
    app = "example_project.asgi:application"
    if kind == "uvicorn":
        argv = uvicorn_argv(app, port, ws=ws, deflate=deflate)
    elif kind == "daphne":
        argv = [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), app]
    else:
        raise ValueError(kind)
    full_env = base_env(
        {
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "JWT_SECRET": BENCH_JWT_SECRET,
            "BROADCAST_TRIGGER_SECRET": BENCH_TRIGGER_SECRET,
            "BROADCAST_WEBSOCKET_HOST": "127.0.0.1",
            "BROADCAST_WEBSOCKET_PORT": str(port),
            "BROADCAST_LOG_LEVEL": "WARNING",
            # Every load-generator socket comes from 127.0.0.1: the per-address limit is for public sites.
            "BROADCAST_MAX_CONNECTIONS_PER_ADDRESS": "0",
            "DATABASE_PATH": str(Path(tempfile.gettempdir()) / "bench-db.sqlite3"),
            **(env or {}),
        }
    )
    return Proc(f"project-{kind}", argv, full_env, port)


def channels_peer(layer: str, redis_port: int | None = None) -> Proc:
    """The plain Channels group_send server (bench/peers/channels_peer) on uvicorn."""
    port = free_port()
    env = {"DJANGO_SETTINGS_MODULE": "bench.peers.channels_peer.settings", "PEER_LAYER": layer}
    if redis_port is not None:
        env["PEER_REDIS_PORT"] = str(redis_port)
    argv = uvicorn_argv("bench.peers.channels_peer.asgi:application", port)
    return Proc(f"channels-{layer}", argv, base_env(env), port)


def raw_peer() -> Proc:
    """The raw ``websockets.broadcast()`` server (bench/peers/raw_websockets.py)."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.peers.raw_websockets", str(port)]
    return Proc("raw-websockets", argv, base_env(), port)


def redis_server() -> Proc:
    """A private redis-server on a free port (no persistence), so command counts are ours alone."""
    port = free_port()
    argv = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--maxclients",
        "10000",
    ]
    return Proc("redis", argv, base_env(), port)


# -- load generators ---------------------------------------------------------------------------
class LoadGen:
    """A pool of load-generator processes (bench/loadgen.py) driven over pipes."""

    def __init__(self, count: int) -> None:
        from .loadgen import worker_main

        ctx = multiprocessing.get_context("fork")
        self.pipes = []
        self.procs = []
        for _ in range(count):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), daemon=True)
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.pids = [p.pid for p in self.procs]
        # Load generators on the last CPU, the server under test alone on the first: on a small
        # machine they would otherwise preempt the server in the middle of a fan-out.
        for pid in self.pids:
            pin(pid, loadgen_cpus())
        self.dones: list[set[int]] = [set() for _ in self.pipes]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def _reply(self, index: int, timeout: float) -> tuple:
        pipe = self.pipes[index]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not pipe.poll(left):
                raise TimeoutError(f"load generator {index} did not answer within {timeout:.0f}s")
            msg = pipe.recv()
            if msg[0] == "done":
                self.dones[index].add(msg[1])
                continue
            if msg[0] == "error":
                raise RuntimeError(f"load generator {index}: {msg[1]}")
            return msg

    def call_each(self, cmds: Sequence[tuple], timeout: float = 120.0) -> list[tuple]:
        for pipe, cmd in zip(self.pipes, cmds):
            pipe.send(cmd)
        return [self._reply(i, timeout) for i in range(len(cmds))]

    def call_all(self, cmd: tuple, timeout: float = 120.0) -> list[tuple]:
        return self.call_each([cmd] * len(self.pipes), timeout)

    def wait_done(self, seq: int, timeout: float) -> bool:
        """Wait until every generator reported ``seq`` complete; False on timeout."""
        deadline = time.monotonic() + timeout
        for index, pipe in enumerate(self.pipes):
            while seq not in self.dones[index]:
                left = deadline - time.monotonic()
                if left <= 0 or not pipe.poll(left):
                    return False
                msg = pipe.recv()
                if msg[0] == "done":
                    self.dones[index].add(msg[1])
        return True

    def drain_dones(self) -> None:
        for index, pipe in enumerate(self.pipes):
            while pipe.poll(0):
                msg = pipe.recv()
                if msg[0] == "done":
                    self.dones[index].add(msg[1])

    def reset(self) -> None:
        self.call_all(("reset",))
        self.dones = [set() for _ in self.pipes]

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("quit",))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
