"""S2 idle memory, S3 cross-process through Redis, S4 churn with presence.

S1 (local fan-out) lives in ``s1.py`` with the shared measuring helpers.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from typing import Any

from . import procs
from .procs import LoadGen, cpu_seconds, rss_bytes
from .s1 import Cell, broadcast_loop, collect, connect, counted, percentiles, split
from .targets import Project, make_token


# -- S2 -------------------------------------------------------------------------------------------
def run_s2(target: Any, loadgen: LoadGen, n: int, *, compress: bool, idle_seconds: float) -> Cell:
    """RSS per connection and idle CPU with ``n`` idle subscribed connections."""
    label = target.label + (" (deflate)" if compress and "deflate" not in target.label else "")
    cell = Cell("S2", target.name, label, n)
    target.start()
    try:
        # Warm up (lazy imports, caches, thread pools) before the baseline.
        connect(loadgen, [target.url("idle") for _ in range(20)], target.marker, compress=compress)
        loadgen.call_all(("close",))
        time.sleep(1.0)
        rss0 = rss_bytes(target.pid)
        ok, failed, secs = connect(
            loadgen, [target.url("idle") for _ in range(n)], target.marker, concurrency=100, compress=compress
        )
        time.sleep(2.0)  # let the server finish handshake work before reading memory
        rss1 = rss_bytes(target.pid)
        cpu0 = cpu_seconds(target.pid)
        time.sleep(idle_seconds)
        cpu1 = cpu_seconds(target.pid)
        cell.n = ok
        cell.rss_per_conn_kib = (rss1 - rss0) / max(ok, 1) / 1024
        cell.idle_cpu_pct = (cpu1 - cpu0) / idle_seconds * 100
        cell.note = f"{ok:,} connected in {secs:.1f}s" + (f", {failed} failed" if failed else "")
        cell.extra = {"rss_before": rss0, "rss_after": rss1}
    finally:
        loadgen.call_all(("close",), timeout=120)
        target.stop()
    return cell


# -- S3 -------------------------------------------------------------------------------------------
def redis_driver_available() -> bool:
    return importlib.util.find_spec("django_broadcasting.drivers.redis") is not None


def s3_env(redis_port: int) -> tuple[dict[str, str], str]:
    if redis_driver_available():
        return (
            {
                "BROADCAST_DRIVER": "redis",
                "BROADCAST_REDIS_HOST": "127.0.0.1",
                "BROADCAST_REDIS_PORT": str(redis_port),
                "BROADCAST_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            },
            "redis driver",
        )
    return (
        {
            "BROADCAST_CHANNEL_LAYER": "redis",
            "BROADCAST_REDIS_HOST": "127.0.0.1",
            "BROADCAST_REDIS_PORT": str(redis_port),
            "BROADCAST_CHANNEL_LAYER_PREFIX": "bench",
        },
        "websocket driver over channels-redis",
    )


class _Cluster:
    """Two project servers sharing Redis, published to from a third process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.servers = [Project("uvicorn", env=env), Project("uvicorn", env=env)]
        self.env = env
        self.publisher: subprocess.Popen | None = None

    @property
    def pid(self) -> list[int]:
        return [s.pid for s in self.servers]

    def start(self) -> None:
        for server in self.servers:
            server.start()
        env = dict(self.servers[0].proc.env)  # type: ignore[union-attr]
        self.publisher = subprocess.Popen(
            [sys.executable, "-m", "bench.publisher"],
            cwd=procs.REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        line = self.publisher.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "ready":
            raise RuntimeError(f"S3 publisher did not start: {line!r}")

    def publish(self, seq: int, channel: str = "bench") -> None:
        assert self.publisher is not None and self.publisher.stdin and self.publisher.stdout
        self.publisher.stdin.write(f"{seq} {channel}\n")
        self.publisher.stdin.flush()
        if self.publisher.stdout.readline().strip() != "ok":
            raise RuntimeError("S3 publisher failed")

    def stop(self) -> None:
        if self.publisher is not None:
            self.publisher.kill()
            self.publisher.wait(5)
        for server in self.servers:
            server.stop()


def _redis_calls(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


def run_s3(loadgen: LoadGen, redis: procs.Proc, n: int, *, broadcasts: int, budget: float) -> Cell:
    import redis as redis_py

    env, how = s3_env(redis.port or 0)
    cluster = _Cluster(env)
    cell = Cell("S3", "project-2x-uvicorn-redis", f"django-broadcasting, 2 uvicorn + Redis ({how})", n)
    client = redis_py.Redis(host="127.0.0.1", port=redis.port)
    cluster.start()
    try:
        urls = [cluster.servers[i % 2].url() for i in range(n)]
        ok, failed, secs = connect(loadgen, urls, cluster.servers[0].marker)
        print(f"   S3: {ok} subscribers over 2 servers in {secs:.1f}s", flush=True)
        # Background Redis traffic (polling reads, refreshes) measured alone, then subtracted.
        idle0, t0 = _redis_calls(client), time.monotonic()
        time.sleep(2.0)
        idle1, t1 = _redis_calls(client), time.monotonic()
        # -2: our own INFO calls.
        idle_rate = max(0.0, (sum(idle1.values()) - sum(idle0.values()) - 2) / (t1 - t0))
        before = _redis_calls(client)
        broadcast_loop(
            cluster, loadgen, cell, broadcasts=broadcasts, budget=budget, min_broadcasts=5, per_timeout=30
        )
        after = _redis_calls(client)
        total = sum(after.values()) - sum(before.values()) - 1
        net = max(0.0, total - idle_rate * cell.seconds)
        cell.redis_per_broadcast = net / max(cell.broadcasts, 1)
        top = sorted(
            ((after.get(k, 0) - before.get(k, 0), k.replace("cmdstat_", "")) for k in after), reverse=True
        )
        cell.note = (
            (cell.note + "; " if cell.note else "")
            + "commands: "
            + ", ".join(f"{k} {v}" for v, k in top[:4] if v)
            + f"; idle {idle_rate:.1f}/s subtracted"
        )
        cell.extra["driver"] = how
    finally:
        loadgen.call_all(("close",), timeout=120)
        cluster.stop()
        client.close()
    return cell


# -- S4 -------------------------------------------------------------------------------------------
def run_s4(loadgen: LoadGen, *, stable: int, churn_rate: float, duration: float, tick_rate: float) -> Cell:
    """Stable subscribers on a presence channel while others join and leave ``churn_rate`` times/s."""
    target = Project("uvicorn")
    channel = "presence.chat.bench"
    cell = Cell("S4", target.name, f"{target.label}, presence + churn", stable)
    workers = len(loadgen.pipes)
    target.start()
    try:
        urls = [target.url(channel, make_token(f"stable-{i}")) for i in range(stable)]
        connect(loadgen, urls, target.marker, concurrency=50)
        per_worker = counted(loadgen)
        loadgen.reset()
        per_churner = int(churn_rate / workers * duration * 1.2) + 2
        churn_urls = [
            [target.url(channel, make_token(f"churn-{w}-{i}")) for i in range(per_churner)]
            for w in range(workers)
        ]
        cpu0, lg0 = cpu_seconds(target.pid), loadgen.cpu()
        for pipe, chunk in zip(loadgen.pipes, churn_urls):
            pipe.send(("churn", chunk, target.marker, churn_rate / workers, duration, 0.2))
        start = time.monotonic()
        seq = 0
        while time.monotonic() - start < duration:
            target.publish(seq, channel)
            seq += 1
            time.sleep(max(0.0, start + seq / tick_rate - time.monotonic()))
        # Wait for the last tick to reach every stable subscriber (or give up after 10 s).
        from .s1 import _wait

        _wait(loadgen, per_worker, seq - 1, 10.0)
        churn = [loadgen._reply(i, 60.0) for i in range(workers)]
        elapsed = time.monotonic() - start
        cpu1, lg1 = cpu_seconds(target.pid), loadgen.cpu()
        received, lat = collect(loadgen)
        churned = sum(r[1] for r in churn)
        cell.broadcasts = seq
        cell.deliveries = received
        cell.lost = max(0, seq * sum(per_worker) - received)
        cell.seconds = elapsed
        cell.server_cpu, cell.loadgen_cpu = cpu1 - cpu0, lg1 - lg0
        cell.p50, cell.p99, cell.max = percentiles(lat)
        failed = sum(r[2] for r in churn)
        cell.note = (
            f"{churned / duration:.0f} connect+subscribe+disconnect/s with presence "
            f"({churned} cycles{f', {failed} failed' if failed else ''}), {tick_rate:.0f} broadcasts/s"
        )
        if not hasattr(__import__("django_broadcasting.server.hub", fromlist=["Hub"]).Hub, "recover"):
            cell.note += "; no recovery in this build"
    finally:
        loadgen.call_all(("close",), timeout=120)
        target.stop()
    return cell


__all__ = ["run_s2", "run_s3", "run_s4", "split"]
