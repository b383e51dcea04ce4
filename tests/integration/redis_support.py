"""Helpers for the Redis scale-out tests: a private redis-server, a publisher process, clients.

- ``RedisServer``: a ``redis-server`` of our own on a free port (no persistence), started,
  killed and restarted by PID, so tests may break it without touching the shared Redis.
- ``run_publisher(env, ...)``: publish from a separate process (``python -m
  tests.integration.redis_publisher``) through the sync API, as a WSGI worker or a task would.
- ``redis_env(url, prefix, **extra)``: the environment of a server process on the redis driver.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
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
    """A throw-away ``redis-server`` on 127.0.0.1 (no RDB, no AOF); TLS-only when given a cert and key."""

    def __init__(self, port: int | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed")
        self.port = port or free_port()
        self.tls = tls
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
        self.process = subprocess.Popen(
            [self.binary, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
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
    "Path",
    "RedisServer",
    "collect",
    "parse_results",
    "redis_env",
    "run_publisher",
    "start_publisher",
    "wait_until",
]
