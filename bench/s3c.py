"""S3c: S3 on a Redis Cluster of 3 primaries (``python -m bench --only S3C``).

A real cluster (``redis-server --cluster-enabled yes`` x 3, ``redis-cli --cluster create``) on
loopback ports; 1, 2 and 4 uvicorn servers of the example site with
``BROADCAST_REDIS_CLUSTER_NODES``; a publisher process (``bench.publisher``); subscribers on 1, 3
and 12 channels spread evenly over the three shards. Each round publishes one broadcast per
channel and waits until every socket has it.

Measured per cell, from each node's ``INFO commandstats`` (the background traffic of the same
cell measured alone for 2 s before, and subtracted): Redis commands per broadcast in the whole
cluster and on each shard, ``SPUBLISH`` per broadcast, and the shard subscribers of a channel
(``PUBSUB SHARDNUMSUB``: one per server process that has sockets on it).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import procs
from .procs import LoadGen
from .s1 import collect, connect
from .targets import Project

BEGIN = "<!-- bench:s3c:begin -->"
END = "<!-- bench:s3c:end -->"
PREFIX = "bench:"
#: CPU and wall seconds per sync publish: {"standalone": (cpu, wall), "cluster": (cpu, wall)}.
PUBLISHER_COST: dict[str, tuple[float, float]] = {}


@dataclass
class ClusterCell:
    servers: int
    channels: int
    sockets: int
    broadcasts: int = 0
    deliveries: int = 0
    lost: int = 0
    seconds: float = 0.0
    per_broadcast: float = 0.0  # Redis commands in the whole cluster, per broadcast
    spublish: float = 0.0  # SPUBLISH per broadcast
    per_shard: list[float] = field(default_factory=list)  # commands per broadcast on each shard
    shard_subscribers: int = 0  # PUBSUB SHARDNUMSUB of one channel, on its owner
    links: int = 0  # sharded pub/sub connections of all servers together
    redis_cpu_us: float = 0.0  # Redis CPU (user + system, all nodes) per broadcast, in µs
    top: str = ""


#: The bench's own reads (INFO, connection set-up, CLIENT LIST), left out of the counts.
_OURS = ("info", "hello", "client")


def _calls(cluster: Any, port: int) -> dict[str, int]:
    return {k: v for k, v in cluster.commandstats(port).items() if not k.startswith(_OURS)}


def _cpu(cluster: Any, ports: list[int]) -> float:
    """CPU seconds (user + system) the nodes used so far (``INFO cpu``)."""
    total = 0.0
    for port in ports:
        info = cluster.node(port).info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def _sharded_links(cluster: Any, port: int) -> int:
    """Client connections of a node with at least one shard channel subscribed (``ssub=`` > 0)."""
    raw = cluster.call(port, "CLIENT", "LIST")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return sum(1 for line in text.splitlines() if "ssub=" in line and "ssub=0" not in line.split())


def spread_channels(cluster: Any, count: int) -> list[str]:
    """``count`` channel names, owned in turn by each primary (round robin)."""
    shards = cluster.primaries_now()
    found: dict[int, list[str]] = {p: [] for p in shards}
    i = 0
    while sum(len(v) for v in found.values()) < count or min(len(v) for v in found.values()) < count // 3:
        name = f"bench.{i}"
        owner = cluster.owner(f"{PREFIX}{{{name}}}")
        if len(found[owner]) < (count + len(shards) - 1) // len(shards):
            found[owner].append(name)
        i += 1
    ordered = [
        found[p][j] for j in range(max(len(v) for v in found.values())) for p in shards if j < len(found[p])
    ]
    return ordered[:count]


class _Publisher:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.publisher"],
            cwd=procs.REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        if self.process.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
            raise RuntimeError("S3c publisher did not start")

    def publish(self, seq: int, channel: str) -> None:
        self.process.stdin.write(f"{seq} {channel}\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        if self.process.stdout.readline().strip() != "ok":  # type: ignore[union-attr]
            raise RuntimeError("S3c publisher failed")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(5)


def _wait_seq(loadgen: LoadGen, seq: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for index, pipe in enumerate(loadgen.pipes):
        while seq not in loadgen.dones[index]:
            left = deadline - time.monotonic()
            if left <= 0 or not pipe.poll(left):
                return False
            msg = pipe.recv()
            if msg[0] == "done":
                loadgen.dones[index].add(msg[1])
    return True


def run_cell(
    cluster: Any, servers: list[Project], publisher: _Publisher, loadgen: LoadGen, channels: list[str],
    sockets: int, rounds: int, seq0: int,
) -> ClusterCell:  # fmt: skip
    shards = cluster.primaries_now()
    cell = ClusterCell(len(servers), len(channels), 0)
    per = max(1, sockets // (len(servers) * len(channels)))
    urls = [server.url(ch) for server in servers for ch in channels for _ in range(per)]
    ok, failed, _ = connect(loadgen, urls, servers[0].marker)
    cell.sockets = ok
    loadgen.reset()
    try:
        # Warm-up round (the publisher's first call discovers the cluster and opens its connections).
        for channel in channels:
            publisher.publish(seq0 + 999, channel)
        _wait_seq(loadgen, seq0 + 999, 30)
        # The cell's background traffic (heartbeats, admin polls), alone.
        idle0, cpu_idle0, t0 = (
            {p: _calls(cluster, p) for p in shards},
            _cpu(cluster, shards),
            time.monotonic(),
        )
        time.sleep(2.0)
        idle1, cpu_idle1, t1 = (
            {p: _calls(cluster, p) for p in shards},
            _cpu(cluster, shards),
            time.monotonic(),
        )
        cpu_idle_rate = (cpu_idle1 - cpu_idle0) / (t1 - t0)
        idle = {p: max(0.0, (sum(idle1[p].values()) - sum(idle0[p].values())) / (t1 - t0)) for p in shards}
        before = {p: _calls(cluster, p) for p in shards}
        cpu0 = _cpu(cluster, shards)
        start = time.monotonic()
        for r in range(rounds):
            seq = seq0 + r
            for channel in channels:
                publisher.publish(seq, channel)
            if not _wait_seq(loadgen, seq, 30):
                cell.top = f"round {r} incomplete after 30 s; "
        cell.seconds = time.monotonic() - start
        after = {p: _calls(cluster, p) for p in shards}
        cpu1 = _cpu(cluster, shards)
        cell.broadcasts = rounds * len(channels)
        cell.redis_cpu_us = max(0.0, cpu1 - cpu0 - cpu_idle_rate * cell.seconds) / cell.broadcasts * 1e6
        delta = {p: {k: after[p][k] - before[p].get(k, 0) for k in after[p]} for p in shards}
        cell.per_shard = [
            max(0.0, sum(delta[p].values()) - idle[p] * cell.seconds) / cell.broadcasts for p in shards
        ]
        cell.per_broadcast = sum(cell.per_shard)
        cell.spublish = sum(d.get("spublish", 0) for d in delta.values()) / cell.broadcasts
        totals: dict[str, int] = {}
        for d in delta.values():
            for k, v in d.items():
                totals[k] = totals.get(k, 0) + v
        cell.top += ", ".join(f"{k} {v}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1])[:4] if v)
        owner = cluster.owner(f"{PREFIX}{{{channels[0]}}}")
        reply = cluster.call(owner, "PUBSUB", "SHARDNUMSUB", f"{PREFIX}{{{channels[0]}}}")
        cell.shard_subscribers = int(reply[1])
        cell.links = sum(_sharded_links(cluster, p) for p in shards)
        received, _ = collect(loadgen)
        cell.deliveries = received
        cell.lost = max(0, cell.broadcasts // len(channels) * ok - received)
    finally:
        loadgen.call_all(("close",), timeout=120)
    return cell


def publisher_cost(env: dict[str, str], count: int) -> tuple[float, float]:
    """(CPU, wall) seconds per sync ``broadcast_to_channel()`` from a plain process (12 channels)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.s3c_publisher", str(count), "12"],
        cwd=procs.REPO,
        env=procs.base_env({"DJANGO_SETTINGS_MODULE": "example_project.settings", **env}),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def run_s3c(loadgen: LoadGen, *, smoke: bool) -> tuple[list[ClusterCell], float]:
    from tests.integration.cluster_support import LocalCluster

    started = time.monotonic()
    server_counts = [1, 2] if smoke else [1, 2, 4]
    channel_counts = [1, 3] if smoke else [1, 3, 12]
    sockets = 30 if smoke else 1200
    rounds = 3 if smoke else 20
    cells: list[ClusterCell] = []
    PUBLISHER_COST.clear()
    cluster = LocalCluster(primaries=3).start()
    try:
        names = spread_channels(cluster, max(channel_counts))
        env = {
            "BROADCAST_DRIVER": "redis",
            "BROADCAST_REDIS_CLUSTER_NODES": cluster.seeds,
            "BROADCAST_CHANNELS_PREFIX": PREFIX,
        }
        calls = 300 if smoke else 5000
        PUBLISHER_COST["cluster"] = publisher_cost(env, calls)
        standalone = procs.redis_server().start()
        try:
            PUBLISHER_COST["standalone"] = publisher_cost(
                {"BROADCAST_DRIVER": "redis", "BROADCAST_REDIS_URL": f"redis://127.0.0.1:{standalone.port}/0",
                 "BROADCAST_CHANNELS_PREFIX": PREFIX},
                calls,
            )  # fmt: skip
        finally:
            standalone.stop()
        print(
            "   S3c publisher: "
            + ", ".join(f"{k} {v[0] * 1e6:.0f} µs CPU/call" for k, v in PUBLISHER_COST.items()),
            flush=True,
        )
        seq0 = 0
        for count in server_counts:
            servers = [Project("uvicorn", env=env) for _ in range(count)]
            publisher = None
            try:
                for server in servers:
                    server.start()
                publisher = _Publisher(dict(servers[0].proc.env))  # type: ignore[union-attr]
                for channels in channel_counts:
                    cell = run_cell(
                        cluster, servers, publisher, loadgen, names[:channels], sockets, rounds, seq0
                    )
                    seq0 += 1000
                    print(f"   S3c {fmt_cell(cell)}", flush=True)
                    cells.append(cell)
            finally:
                if publisher is not None:
                    publisher.stop()
                for server in servers:
                    server.stop()
    finally:
        cluster.stop()
    return cells, time.monotonic() - started


def fmt_cell(cell: ClusterCell) -> str:
    shards = " / ".join(f"{v:.1f}" for v in cell.per_shard)
    return (
        f"{cell.servers} server(s), {cell.channels} channel(s), {cell.sockets} sockets: "
        f"{cell.per_broadcast:.1f} commands/broadcast ({shards} per shard), SPUBLISH {cell.spublish:.2f}, "
        f"lost {cell.lost}"
    )


def table(cells: list[ClusterCell]) -> str:
    lines = [
        "| servers | channels | sockets | broadcasts | Redis commands / broadcast (cluster) | per shard (A / B / C) "
        "| SPUBLISH / broadcast | Redis CPU µs / broadcast | shard subscribers / channel "
        "| pub/sub links (all servers) | lost | commands (all) |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in cells:
        shards = " / ".join(f"{v:.2f}" for v in c.per_shard)
        lines.append(
            f"| {c.servers} | {c.channels} | {c.sockets:,} | {c.broadcasts} | {c.per_broadcast:.2f} | {shards} "
            f"| {c.spublish:.2f} | {c.redis_cpu_us:.0f} | {c.shard_subscribers} | {c.links} | {c.lost} | {c.top} |"
        )
    return "\n".join(lines)


def render(cells: list[ClusterCell], *, mode: str, seconds: float) -> str:
    from .report import header

    parts = [*header(mode, seconds, command="python -m bench --only S3C"), table(cells), ""]
    parts += [
        "- A Redis Cluster of 3 primaries (no replicas) on this machine; the servers are uvicorn processes of the "
        "example site with `BROADCAST_REDIS_CLUSTER_NODES`; the publisher is a third process calling "
        "`broadcast_to_channel` (sync). Channels are spread evenly over the shards (1 channel: shard A only).",
        "- Commands per broadcast: the `INFO commandstats` calls of every node during the broadcast loop, minus the "
        "same cell's background rate (heartbeats, admin polls) measured alone for 2 s before, divided by the "
        "broadcasts. A broadcast is one `EVALSHA` (history `XADD` + `SPUBLISH` inside) on the shard that owns "
        "its channel: the per-shard columns follow the channels, not the servers.",
        "- Shard subscribers: `PUBSUB SHARDNUMSUB` of a channel on its owner, one per server process with "
        "sockets on it. Pub/sub links: client connections with a shard channel subscribed (`CLIENT LIST`, "
        "`ssub` > 0) on all nodes: each server holds one per shard that owns one of its channels, and one for "
        "the control channel (`{~control}`).",
        "- Redis CPU: user + system CPU of all nodes (`INFO cpu`) during the loop, minus the cell's idle rate, per "
        "broadcast. Broadcasts go out one at a time (each waits for its deliveries), so every one pays a full event-"
        "loop wakeup of its shard: an upper bound for a shard under steady load.",
    ]
    if PUBLISHER_COST:
        costs = "; ".join(
            f"{name}: {cpu * 1e6:.0f} µs CPU, {wall * 1e6:.0f} µs wall per call"
            for name, (cpu, wall) in PUBLISHER_COST.items()
        )
        parts.append(
            "- Publisher cost, a plain sync process calling `broadcast_to_channel()` in a loop over 12 channels "
            f"(`bench/s3c_publisher.py`), same run: {costs} (standalone: a private `redis-server`). On a "
            "cluster the sync publisher sends each message on its own blocking connection to the primary that owns "
            "its slot (`SyncRouter`)."
        )
    return "\n".join(parts).rstrip() + "\n"
