"""A throw-away Redis Sentinel set-up for the failover tests: one primary, one replica, three sentinels.

``SentinelSetup`` starts Debian's ``redis-server`` twice (primary, replica of it) and
``redis-sentinel`` three times, all on free ports of 127.0.0.1 with their files in a temporary
directory and no persistence. The sentinels agree on a failure after ``down_after_ms`` and need
two of three votes (quorum 2), so a killed primary is replaced in a few seconds. ``start()``
returns once the replica is in sync and every sentinel knows the replica and both other
sentinels (a failover needs all of that); ``stop()`` kills every process it started, by PID::

    with SentinelSetup() as setup:
        env = {"BROADCAST_REDIS_SENTINELS": setup.sentinels_setting, "BROADCAST_REDIS_SENTINEL_MASTER": setup.master}
        setup.kill_primary()
        new_primary = setup.wait_for_failover(timeout=30)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis

from tests.servers import free_port, port_open, wait_for

MASTER_NAME = "broadcasting"


def sentinel_binary() -> str | None:
    """``redis-sentinel`` (Debian package ``redis-sentinel``), or None when it is not installed."""
    return shutil.which("redis-sentinel") or (
        "/usr/bin/redis-sentinel" if os.access("/usr/bin/redis-sentinel", os.X_OK) else None
    )


class SentinelSetup:
    """One primary, one replica and three sentinels on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self, master: str = MASTER_NAME, down_after_ms: int = 1000, failover_timeout_ms: int = 3000
    ) -> None:
        self.server_binary = shutil.which("redis-server")
        self.sentinel_binary = sentinel_binary()
        if self.server_binary is None or self.sentinel_binary is None:
            raise RuntimeError(
                "redis-server and redis-sentinel are required (Debian: redis-server redis-sentinel)"
            )
        self.master = master
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.directory = Path(tempfile.mkdtemp(prefix="broadcasting-sentinel-"))
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- addresses ------------------------------------------------------------------------
    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    @property
    def sentinels_setting(self) -> str:
        """The value of ``BROADCAST_REDIS_SENTINELS``."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2)

    # -- lifecycle ------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.processes[name] = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        finally:
            log.close()

    def _redis_args(self, name: str, port: int) -> list[str]:
        workdir = self.directory / name
        workdir.mkdir(exist_ok=True)
        return [
            self.server_binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
            "--save", "", "--appendonly", "no", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
        ]  # fmt: skip

    def start(self) -> SentinelSetup:
        try:
            self._spawn("primary", self._redis_args("primary", self.primary_port))
            wait_for(lambda: port_open("127.0.0.1", self.primary_port), 10, message="the primary")
            self._spawn(
                "replica",
                [
                    *self._redis_args("replica", self.replica_port),
                    "--replicaof",
                    "127.0.0.1",
                    str(self.primary_port),
                ],
            )
            wait_for(lambda: port_open("127.0.0.1", self.replica_port), 10, message="the replica")
            wait_for(self._replica_in_sync, 20, 0.1, message="the replica to sync with the primary")
            for index, port in enumerate(self.sentinel_ports):
                config = self.directory / f"sentinel-{index}.conf"  # sentinels rewrite their file
                config.write_text(
                    f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                    f"sentinel monitor {self.master} 127.0.0.1 {self.primary_port} 2\n"
                    f"sentinel down-after-milliseconds {self.master} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {self.master} {self.failover_timeout_ms}\n"
                    f"sentinel parallel-syncs {self.master} 1\n"
                )
                self._spawn(f"sentinel-{index}", [self.sentinel_binary, str(config)])
            for port in self.sentinel_ports:
                wait_for(lambda p=port: port_open("127.0.0.1", p), 10, message=f"sentinel on {port}")
            wait_for(
                self._sentinels_ready, 30, 0.1, message="the sentinels to find the replica and each other"
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _replica_in_sync(self) -> bool:
        try:
            with self.client(self.replica_port) as client:
                info = client.info("replication")
        except redis.RedisError:
            return False
        return info.get("master_link_status") == "up"

    def _sentinels_ready(self) -> bool:
        for port in self.sentinel_ports:
            try:
                with self.client(port) as client:
                    state = client.sentinel_master(self.master)
            except redis.RedisError:
                return False
            if int(state.get("num-slaves", 0)) < 1 or int(state.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def primary_address(self) -> tuple[str, int] | None:
        """The primary a majority of the sentinels name now (None when they disagree or are down)."""
        votes: dict[tuple[str, int], int] = {}
        for port in self.sentinel_ports:
            try:
                with self.client(port) as client:
                    host, primary = client.sentinel_get_master_addr_by_name(self.master)
            except (redis.RedisError, TypeError):
                continue
            key = (host.decode() if isinstance(host, bytes) else host, int(primary))
            votes[key] = votes.get(key, 0) + 1
        best = max(votes.items(), key=lambda item: item[1], default=None)
        return best[0] if best and best[1] >= 2 else None

    def kill_primary(self) -> None:
        """SIGKILL the primary: no shutdown, no last words to the replica."""
        process = self.processes.get("primary")
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)

    def wait_for_failover(self, timeout: float = 30) -> tuple[str, int]:
        """Wait until the sentinels name the replica as primary and it accepts writes; its address."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.primary_address() == ("127.0.0.1", self.replica_port):
                try:
                    with self.client(self.replica_port) as client:
                        if client.info("replication").get("role") == "master":
                            return "127.0.0.1", self.replica_port
                except redis.RedisError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"no failover within {timeout}s\n{self.logs()}")

    def logs(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.directory.glob("*.log")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name} ---\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SentinelSetup:
        return self.start() if not self.processes else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
