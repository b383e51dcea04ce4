"""Helpers for the Redis scale-out tests: a private redis-server, a publisher process, clients.

- ``RedisServer``: a ``redis-server`` of our own on a free port (no persistence), started,
  killed and restarted by PID, so tests may break it without touching the shared Redis.
- ``run_publisher(env, ...)``: publish from a separate process (``python -m
  tests.integration.redis_publisher``) through the sync API, as a WSGI worker or a task would.
- ``LastingPublisher``: one publisher process kept alive across a fault (``fault_publisher``),
  publishing on demand through the sync or the async helper.
- ``redis_env(url, prefix, **extra)``: the environment of a server process on the redis driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from tests.integration.wsclient import recv
from tests.servers import REPO_ROOT, free_port, port_open, server_env, wait_for


def redis_env(url: str, prefix: str, **extra: Any) -> dict[str, str]:
    env = {"BROADCAST_DRIVER": "redis", "BROADCAST_REDIS_URL": url, "BROADCAST_CHANNELS_PREFIX": prefix}
    env.update({key: str(value) for key, value in extra.items()})
    return env


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``openssl``); returns (cert, key)."""
    cert, key = directory / "redis-cert.pem", directory / "redis-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class RedisServer:
    """A throw-away ``redis-server`` on 127.0.0.1; TLS-only when given a cert and key.

    No persistence, so a restart loses every key, unless ``aof_dir`` is given: then an
    append-only file there (fsync'd at every write) brings the data back after a kill.
    """

    def __init__(
        self, port: int | None = None, tls: tuple[Path, Path] | None = None, aof_dir: Path | None = None
    ) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed")
        self.port = port or free_port()
        self.tls = tls
        self.aof_dir = aof_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if self.tls:
            cert, key = self.tls
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                      "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]  # fmt: skip
        else:
            listen = ["--port", str(self.port)]
        if self.aof_dir:
            persistence = ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.aof_dir)]
        else:
            persistence = ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [self.binary, *listen, "--bind", "127.0.0.1", "--save", "", *persistence],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: port_open("127.0.0.1", self.port), 10, message=f"redis-server on {self.port}")
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the server for the block: TCP stays up, nothing answers. Always SIGCONT after."""
        pid = self.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def commandstats(self) -> dict[str, int]:
        client = self.client()
        try:
            info = client.info("commandstats")
        finally:
            client.close()
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in info.items()}


def run_publisher(
    env: dict[str, str],
    channel: str,
    count: int,
    *,
    interval: float = 0.0,
    event: str = "tick",
    timeout: float = 120,
) -> list[dict[str, Any]]:
    """Publish ``count`` messages from a separate process; one result dict per message."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.redis_publisher",
            channel,
            str(count),
            str(interval),
            event,
        ],
        cwd=REPO_ROOT,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"publisher exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def start_publisher(
    env: dict[str, str], channel: str, count: int, *, interval: float = 0.0, event: str = "tick"
) -> subprocess.Popen[str]:
    """Like ``run_publisher`` but in the background; read ``proc.communicate()`` later."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.redis_publisher",
            channel,
            str(count),
            str(interval),
            event,
        ],
        cwd=REPO_ROOT,
        env=server_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class LastingPublisher:
    """A ``tests.integration.fault_publisher`` process: ``publish("sync"|"async", n)`` -> its result dict."""

    def __init__(self, env: dict[str, str], channel: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.fault_publisher", channel],
            cwd=REPO_ROOT,
            env=server_env(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self._line(60)
        if ready != "ready":
            self.close()
            raise RuntimeError(f"publisher did not start: {ready!r}\n{self.process.stderr.read()}")

    def _pump(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def _line(self, timeout: float) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the publisher did not answer within {timeout}s (a hang)") from None

    def publish(self, mode: str, n: int, channel: str = "", timeout: float = 30) -> dict[str, Any]:
        self.process.stdin.write(f"{mode} {n} {channel}\n")
        self.process.stdin.flush()
        return json.loads(self._line(timeout))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def parse_results(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


async def collect(ws: Any, event: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """Read frames until ``count`` frames of ``event`` arrived; return those."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"got {len(got)} of {count} {event!r} frames within {timeout}s")
        frame = await recv(ws, left)
        if frame.get("event") == event:
            got.append(frame)
    return got


async def wait_until(predicate: Any, timeout: float, message: str, interval: float = 0.05) -> None:
    """Poll an (async or sync) predicate until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


__all__ = [
    "LastingPublisher",
    "Path",
    "RedisServer",
    "collect",
    "parse_results",
    "redis_env",
    "run_publisher",
    "start_publisher",
    "wait_until",
]
