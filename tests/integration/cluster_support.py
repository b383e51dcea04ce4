"""A throw-away Redis Cluster for tests and the benchmark: real ``redis-server`` processes.

``LocalCluster(primaries=3, replicas=0).start()`` starts ``redis-server --cluster-enabled yes``
nodes on free loopback ports, each in its own temporary directory, joins them with
``redis-cli --cluster create ... --cluster-yes``, and waits until every node reports
``cluster_state:ok``. ``stop()`` kills the nodes by PID and removes the directories.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from tests.servers import port_open, wait_for


def free_cluster_port() -> int:
    """A free loopback port whose cluster bus port (port + 10000) is free too."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 45000)
        sockets = []
        try:
            for p in (port, port + 10000):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """``primaries`` primaries with ``replicas`` replicas each, on 127.0.0.1."""

    def __init__(self, primaries: int = 3, replicas: int = 0, node_timeout_ms: int = 1000) -> None:
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed")
        self.primaries, self.replicas = primaries, replicas
        self.node_timeout_ms = node_timeout_ms
        self.ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.directory: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> LocalCluster:
        self.directory = Path(tempfile.mkdtemp(prefix="bc-cluster-"))
        count = self.primaries * (1 + self.replicas)
        try:
            for _ in range(count):
                self.start_node(free_cluster_port())
            addresses = [f"127.0.0.1:{p}" for p in self.ports]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas),
                 "--cluster-yes"],
                check=True, capture_output=True, timeout=timeout,
            )  # fmt: skip
            self.wait_ok(timeout)
            if self.replicas:
                self.wait_replicas_synced(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_node(self, port: int) -> None:
        assert self.directory is not None
        node_dir = self.directory / str(port)
        node_dir.mkdir(exist_ok=True)
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", str(node_dir / "nodes.conf"),
             "--cluster-node-timeout", str(self.node_timeout_ms), "--dir", str(node_dir),
             "--cluster-replica-validity-factor", "0",
             "--save", "", "--appendonly", "no", "--logfile", str(node_dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self.processes[port] = process
        if port not in self.ports:
            self.ports.append(port)
        wait_for(lambda: port_open("127.0.0.1", port), 10, message=f"redis-server on {port}")

    def stop(self) -> None:
        for port in list(self.processes):
            self.kill(port)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def kill(self, port: int) -> None:
        process = self.processes.pop(port, None)
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- inspection ------------------------------------------------------------------------
    @property
    def seeds(self) -> str:
        """``BROADCAST_REDIS_CLUSTER_NODES`` for this cluster."""
        return ",".join(f"127.0.0.1:{p}" for p in self.ports[:3])

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def live_ports(self) -> list[int]:
        return [p for p, proc in self.processes.items() if proc.poll() is None]

    def call(self, port: int, *args: Any) -> Any:
        client = self.node(port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def wait_ok(self, timeout: float = 60) -> None:
        """Wait until every live node says ``cluster_state:ok`` and agrees on the slot owners."""

        def ok() -> bool:
            try:
                owners = set()
                for port in self.live_ports():
                    info = self.call(port, "CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if "cluster_state:ok" not in text:
                        return False
                    owners.add(tuple(sorted((s[0], s[1], s[2][1]) for s in self.slots(port))))
                return len(owners) == 1
            except redis.RedisError:
                return False

        wait_for(ok, timeout, interval=0.1, message="cluster_state:ok on every node")

    def wait_replicas_synced(self, timeout: float = 60) -> None:
        """Wait until every replica finished its first sync (a replica that never synced will
        not stand for election when its primary fails)."""

        def synced() -> bool:
            try:
                roles = [self.node(p).info("replication") for p in self.live_ports()]
            except redis.RedisError:
                return False
            replicas = [r for r in roles if r.get("role") == "slave"]
            return len(replicas) == self.primaries * self.replicas and all(
                r.get("master_link_status") == "up" for r in replicas
            )

        wait_for(synced, timeout, interval=0.1, message="every replica in sync with its primary")

    def slots(self, port: int) -> list[Any]:
        return self.call(port, "CLUSTER", "SLOTS")

    def primaries_now(self) -> list[int]:
        """Ports of the nodes that own slots now."""
        port = self.live_ports()[0]
        return sorted({int(s[2][1]) for s in self.slots(port)})

    def owner(self, key: str) -> int:
        """Port of the primary that owns ``key``'s slot."""
        port = self.live_ports()[0]
        slot = int(self.call(port, "CLUSTER", "KEYSLOT", key))
        for start, end, primary, *_ in self.slots(port):
            if int(start) <= slot <= int(end):
                return int(primary[1])
        raise LookupError(f"no owner for slot {slot}")

    def replica_of(self, primary_port: int) -> int:
        node_id = self.node_id(primary_port)
        for port in self.live_ports():
            info = self.call(port, "CLUSTER", "NODES")
            for line in (info.decode() if isinstance(info, bytes) else info).splitlines():
                fields = line.split()
                if "myself" in fields[2] and "slave" in fields[2] and fields[3] == node_id:
                    return port
        raise LookupError(f"no replica of {primary_port}")

    def node_id(self, port: int) -> str:
        value = self.call(port, "CLUSTER", "MYID")
        return value.decode() if isinstance(value, bytes) else value

    def commandstats(self, port: int) -> dict[str, int]:
        client = self.node(port)
        try:
            info = client.info("commandstats")
        finally:
            client.close()
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in info.items()}

    def reset_stats(self) -> None:
        for port in self.live_ports():
            self.call(port, "CONFIG", "RESETSTAT")

    def move_slot(self, slot: int, target_port: int) -> None:
        """Move one slot (and its keys) to ``target_port``: the resharding steps redis-cli runs."""
        port = self.live_ports()[0]
        source_port = next(int(p[1]) for s, e, p, *_ in self.slots(port) if int(s) <= slot <= int(e))
        if source_port == target_port:
            return
        source_id, target_id = self.node_id(source_port), self.node_id(target_port)
        self.call(target_port, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        self.call(source_port, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        while True:
            keys = self.call(source_port, "CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not keys:
                break
            self.call(source_port, "MIGRATE", "127.0.0.1", target_port, "", 0, 5000, "KEYS", *keys)
        for p in self.primaries_now():
            self.call(p, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every node learns the new owner
            if all(self.owner_of_slot(slot, p) == target_port for p in self.live_ports()):
                return
            time.sleep(0.05)
        raise AssertionError(f"slot {slot} did not move to {target_port}")

    def owner_of_slot(self, slot: int, asked: int) -> int | None:
        for start, end, primary, *_ in self.slots(asked):
            if int(start) <= slot <= int(end):
                return int(primary[1])
        return None
