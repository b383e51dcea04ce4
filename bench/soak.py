"""``make soak``: thousands of sockets churning against one real server for a bounded time.

``python -m bench.soak --duration 5 --sockets 2000 --backend memory`` (``make soak DURATION=5
SOAK_SOCKETS=2000 SOAK_BACKEND=redis``) starts this project's example site on uvicorn (the in-memory
default, or the ``redis`` driver on a private redis-server) and drives it from client processes:

- **stable subscribers** (5% of the sockets, at least 4; half native ``/ws``, half Pusher
  ``/app/{key}``) connect first, subscribe to the public ``soak.public``, the presence channel
  ``presence.chat.soak0`` (JWT identity; Pusher with signed ``channel_data``) and their own private
  ``user.<id>``, and stay to the end. Every broadcast on those channels is counted at each of them.
- **churners** (the rest) loop until the end: connect (native or Pusher, alternately), subscribe to a
  public and a presence channel, whisper / send client events a few times, sometimes unsubscribe,
  hold for a while, then leave (1 in 10 drop the TCP connection without a close frame).
- a **publisher** thread sends ``tick`` broadcasts through the signed HTTP trigger, to the stable
  channels (one private ``user.<id>`` per tick, round robin) and to a churn channel.

Sampled: the server's RSS every second; its figures (``/api/broadcast/stats`` with
``STATS_TOKEN``) at the start and the end. Printed as a table: RSS after warm-up and its slope
(MiB/min, least squares over the samples after warm-up), broadcasts sent and lost at the stable
subscribers, and after everyone has left: connections, subscribed channels, presence members,
history (channels, bytes; ``HISTORY_TTL`` is short here so idle channels expire) and asyncio tasks,
each against its value before the first client. Exit status 1 when a check fails (a message lost,
a figure not back to its baseline within the settle time, a traceback in the server log).
``--json PATH`` writes the figures for the test suite's smoke (``tests/test_soak_smoke.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import procs
from .soak_clients import APP, STABLE_CHANNELS, Client, Plan, worker_main

STATS_TOKEN = "soak-stats-token-0123456789abcdef"
HISTORY_TTL = 5.0  # seconds: idle channels' history expires within the settle time


# -- the driver ---------------------------------------------------------------------------------
class Publisher(threading.Thread):
    """Ticks through the signed trigger, one request each: the stable channels, one ``user.stable<i>``,
    one churn channel."""

    def __init__(self, port: int, plan: Plan) -> None:
        super().__init__(daemon=True)
        self.port, self.plan = port, plan
        self.halt = threading.Event()
        self.sent: dict[str, list[int]] = {}
        self.failed = 0
        self.seq = 0

    def post(self, conn: http.client.HTTPConnection, channels: list[str], seq: int) -> bool:
        from django_broadcasting.http.trigger import sign

        body = json.dumps({"channels": channels, "event": "tick", "data": {"seq": seq}}).encode()
        conn.request(
            "POST", "/api/broadcast/events", body, {"Content-Type": "application/json", **sign(body)}
        )
        response = conn.getresponse()
        response.read()
        return 200 <= response.status < 300

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        period = 1.0 / self.plan.rate
        next_at = time.monotonic()
        while not self.halt.is_set():
            self.seq += 1
            seq = self.seq
            targets = [
                *STABLE_CHANNELS,
                f"user.stable{seq % self.plan.stable}",
                f"soak.c.{seq % self.plan.rooms}",
            ]
            try:
                ok = self.post(conn, targets, seq)
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                ok = False
            for channel in targets:
                if ok:
                    self.sent.setdefault(channel, []).append(seq)
                else:
                    self.failed += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                self.halt.wait(delay)
            else:
                next_at = time.monotonic()
        conn.close()


def fetch_stats(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/broadcast/stats", headers={"Authorization": f"Bearer {STATS_TOKEN}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"stats answered {response.status}: {body[:200]!r}")
        document = json.loads(body)
    finally:
        conn.close()
    # The node that answered (with Redis, the document lists every node of the cluster).
    for node in document.get("nodes") or ():
        if node.get("node") == document.get("node"):
            return node
    raise RuntimeError(f"stats document without the answering node: {sorted(document)}")


def figures(stats: dict[str, Any]) -> dict[str, int]:
    """The figures that must come back to their baseline once every client has left."""
    history = stats.get("history") or {}
    return {
        "connections": int(stats.get("connections", 0)),
        "channels": len(stats.get("channels") or {}),
        "presence members": int(stats.get("presence_members", 0)),
        "history channels": int(history.get("channels", 0)),
        "history bytes": int(history.get("bytes", 0)),
        "asyncio tasks": int(stats.get("tasks", -1)),
    }


def slope(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) samples, in MiB per minute."""
    if len(samples) < 3:
        return None
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    var = sum((t - mx) ** 2 for t, _ in samples)
    if var == 0:
        return None
    return sum((t - mx) * (v - my) for t, v in samples) / var * 60.0


def server_env(backend: str, redis_port: int | None) -> dict[str, str]:
    env = {
        "PUSHER_APP_ID": APP[0],
        "PUSHER_APP_KEY": APP[1],
        "PUSHER_APP_SECRET": APP[2],
        "BROADCAST_STATS_TOKEN": STATS_TOKEN,
        "BROADCAST_HISTORY_TTL": str(HISTORY_TTL),
        "BROADCAST_ACTIVITY_TIMEOUT": "120",
        # Every client comes from 127.0.0.1: the per-address limit is for public sites.
        "BROADCAST_MAX_CONNECTIONS_PER_ADDRESS": "0",
        "BROADCAST_LOG_LEVEL": "WARNING",
    }
    if backend == "redis":
        assert redis_port is not None
        env.update(
            {
                "BROADCAST_DRIVER": "redis",
                "BROADCAST_REDIS_HOST": "127.0.0.1",
                "BROADCAST_REDIS_PORT": str(redis_port),
                "BROADCAST_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                "BROADCAST_PRESENCE_TTL": "10",
            }
        )
    return env


def wait_until(predicate: Any, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


@dataclass
class Result:
    plan: Plan
    rss_start: float = 0.0
    rss_warm: float = 0.0
    rss_end_load: float = 0.0
    rss_after: float = 0.0
    slope: float | None = None
    samples: int = 0
    baseline: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    ticks: int = 0
    expected: int = 0
    lost: int = 0
    publish_failed: int = 0
    counts: dict[str, Any] = field(default_factory=dict)
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        p = self.plan
        rows = [
            ("backend", p.backend, ""),
            ("sockets (stable + churning)", f"{p.sockets:,} ({p.stable} + {p.sockets - p.stable:,})", ""),
            ("churn: connects / subscribes / whispers", self._churn(), ""),
            (
                "churn failures / error frames",
                f"{self.counts.get('failures', 0)} / {self.counts.get('error_frames', 0)}",
                self.counts.get("first_failure", ""),
            ),
            (
                "RSS at start / after warm-up / end of load",
                f"{self.rss_start:.1f} / {self.rss_warm:.1f} / {self.rss_end_load:.1f} MiB",
                f"warm-up {p.warmup:.0f} s",
            ),
            (
                "RSS slope after warm-up",
                "–" if self.slope is None else f"{self.slope:+.2f} MiB/min",
                f"least squares over {self.samples} samples (1/s)",
            ),
            ("RSS after everyone left", f"{self.rss_after:.1f} MiB", ""),
            (
                "broadcasts sent / failed",
                f"{self.sent:,} / {self.publish_failed}",
                f"{self.ticks / max(1.0, p.duration):.1f} ticks/s of {p.rate:g} asked (a tick is one trigger "
                "request to 4 channels, answered before the next)",
            ),
            ("stable subscribers: expected / lost", f"{self.expected:,} / {self.lost}", "every tick counted"),
        ]
        for key, base in self.baseline.items():
            rows.append(
                (
                    f"{key}: before / peak / after",
                    f"{base:,} / {self.peak.get(key, 0):,} / {self.after.get(key, 0):,}",
                    "back to baseline" if self.after.get(key) == base else "NOT back",
                ),
            )
        rows.append(("tracebacks in the server log", str(self.tracebacks), ""))
        out = ["| Soak figure | Value | Note |", "|---|---|---|"]
        out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        return "\n".join(out)

    def _churn(self) -> str:
        c = self.counts
        return f"{c.get('connects', 0):,} / {c.get('subscribes', 0):,} / {c.get('whispers', 0):,}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sockets": self.plan.sockets,
            "stable": self.plan.stable,
            "backend": self.plan.backend,
            "rss_start": self.rss_start,
            "rss_warm": self.rss_warm,
            "rss_after": self.rss_after,
            "slope_mib_per_min": self.slope,
            "baseline": self.baseline,
            "peak": self.peak,
            "after": self.after,
            "sent": self.sent,
            "expected": self.expected,
            "lost": self.lost,
            "publish_failed": self.publish_failed,
            "counts": self.counts,
            "tracebacks": self.tracebacks,
            "problems": self.problems,
        }


def run(plan: Plan) -> Result:
    result = Result(plan)
    started = time.monotonic()
    redis = procs.redis_server().start() if plan.backend == "redis" else None
    server = procs.project_server("uvicorn", env=server_env(plan.backend, redis.port if redis else None))
    server.start()
    port = server.port or 0
    ctx = multiprocessing.get_context("spawn")
    workers: list[tuple[Any, Any]] = []
    publisher: Publisher | None = None
    try:
        import psutil

        proc = psutil.Process(server.pid)

        def rss() -> float:
            return proc.memory_info().rss / 2**20

        # The hub starts with the first socket, and the Pusher keepalive with the first Pusher
        # socket: open and close one of each, so the baseline counts their process-long tasks.
        async def probe() -> None:
            for kind in ("native", "pusher"):
                client = Client(port, kind, "probe")
                await client.open()
                await client.close()

        asyncio.run(probe())
        # The probe's sockets wind down for a moment after they close: the baseline is the first
        # reading repeated three times in a row, half a second apart.
        readings: list[dict[str, int]] = []

        def steady() -> bool:
            readings.append(figures(fetch_stats(port)))
            return len(readings) >= 3 and readings[-1] == readings[-2] == readings[-3]

        wait_until(steady, 30)
        result.baseline = readings[-1]
        result.rss_start = rss()
        for index in range(plan.workers):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(child, port, index, plan), daemon=True)
            p.start()
            workers.append((parent, p))

        def reply(parent: Any, timeout: float) -> tuple:
            if not parent.poll(timeout):
                raise TimeoutError("a soak client process did not answer")
            msg = parent.recv()
            if msg[0] == "error":
                raise RuntimeError(f"soak client process failed: {msg[1]}")
            return msg

        for parent, _ in workers:
            reply(parent, 300)
        publisher = Publisher(port, plan)
        publisher.start()
        samples: list[tuple[float, float]] = []
        t0 = time.monotonic()
        peak: dict[str, int] = {}
        sampling = threading.Event()

        def watch_stats() -> None:
            # In its own thread: a stats read of a busy server must not delay the RSS samples.
            while not sampling.wait(5.0):
                try:
                    for key, value in figures(fetch_stats(port)).items():
                        peak[key] = max(peak.get(key, 0), value)
                except (OSError, RuntimeError, http.client.HTTPException):
                    pass

        watcher = threading.Thread(target=watch_stats, daemon=True)
        watcher.start()
        next_sample = t0
        while (now := time.monotonic()) - t0 < plan.duration:
            samples.append((now - t0, rss()))
            next_sample += 1.0
            time.sleep(max(0.0, next_sample - time.monotonic()))
        sampling.set()
        watcher.join(60)
        result.peak = peak
        warm = [(t, v) for t, v in samples if t >= plan.warmup]
        result.samples = len(warm)
        result.slope = slope(warm)
        result.rss_warm = warm[0][1] if warm else rss()
        result.rss_end_load = rss()
        counts: dict[str, Any] = {}
        for parent, _ in workers:
            parent.send("stop")
        for parent, _ in workers:
            for key, value in reply(parent, 300)[1].items():
                if isinstance(value, int):
                    counts[key] = counts.get(key, 0) + value
                else:
                    counts.setdefault(key, value)
        result.counts = counts
        publisher.halt.set()
        publisher.join(60)
        # Every tick was answered before the thread stopped; give the last frames a moment to land.
        time.sleep(1.0)
        got: dict[str, dict[str, list[int]]] = {}
        for parent, _ in workers:
            parent.send("report")
        for parent, _ in workers:
            msg = reply(parent, 300)
            got.update(msg[1])
            if msg[2]:
                result.problems.append(f"error frames at stable subscribers: {msg[2][:3]}")
        result.sent = sum(len(v) for v in publisher.sent.values())
        result.publish_failed = publisher.failed
        result.ticks = publisher.seq
        for s in range(plan.stable):
            mine = got.get(f"stable{s}", {})
            for channel in (*STABLE_CHANNELS, f"user.stable{s}"):
                wire = channel
                if s % 2 == 1 and channel.startswith("presence."):
                    wire = "presence-" + channel[len("presence.") :]
                elif s % 2 == 1 and channel.startswith("user."):
                    wire = "private-" + channel
                expected = publisher.sent.get(channel, [])
                received = set(mine.get(wire, []))
                result.expected += len(expected)
                result.lost += sum(1 for seq in expected if seq not in received)
        for _, p in workers:
            p.join(60)

        def settled() -> bool:
            result.after = figures(fetch_stats(port))
            return result.after == result.baseline

        wait_until(settled, plan.settle, interval=1.0)
        result.rss_after = rss()
    finally:
        if publisher is not None:
            publisher.halt.set()
        for _, p in workers:
            if p.is_alive():
                p.kill()
        server.stop()
        if redis is not None:
            redis.stop()
    log = Path(server.log_path).read_text(errors="replace")
    result.tracebacks = log.count("Traceback (most recent call last)")
    result.seconds = time.monotonic() - started
    if result.lost:
        result.problems.append(f"{result.lost} broadcasts lost at stable subscribers")
    if result.publish_failed:
        result.problems.append(f"{result.publish_failed} publishes failed")
    for key, base in result.baseline.items():
        if result.after.get(key) != base:
            result.problems.append(
                f"{key} not back to its baseline: {base} before, {result.after.get(key)} after"
            )
    if result.tracebacks:
        result.problems.append(f"{result.tracebacks} tracebacks in the server log {server.log_path}")
    if not result.problems:
        os.unlink(server.log_path)
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=float(os.environ.get("DURATION", 5)),
        help="minutes of churn (default 5, or $DURATION)",
    )
    parser.add_argument(
        "--sockets",
        type=int,
        default=int(os.environ.get("SOAK_SOCKETS", 2000)),
        help="sockets held at once (default 2000, or $SOAK_SOCKETS)",
    )
    parser.add_argument(
        "--backend", choices=("memory", "redis"), default=os.environ.get("SOAK_BACKEND", "memory")
    )
    parser.add_argument(
        "--rate", type=float, default=10.0, help="publisher ticks per second (4 broadcasts each)"
    )
    parser.add_argument("--hold", default="10,60", help="seconds a churner stays connected: min,max")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds left out of the RSS slope (default: a fifth of the run, at most 60)",
    )
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    os.environ["BROADCAST_TRIGGER_SECRET"] = procs.BENCH_TRIGGER_SECRET
    import django

    django.setup()
    from .loadgen import raise_nofile

    raise_nofile()
    if args.backend == "redis" and not shutil.which("redis-server"):
        print("soak: --backend redis needs redis-server on PATH", file=sys.stderr)
        return 2
    seconds = args.duration * 60.0
    low, high = (float(x) for x in args.hold.split(","))
    plan = Plan(
        duration=seconds,
        sockets=args.sockets,
        backend=args.backend,
        rate=args.rate,
        hold=(low, high),
        warmup=args.warmup if args.warmup is not None else min(60.0, seconds / 5),
        workers=max(1, args.workers),
    )
    print(
        f"soak: {plan.sockets:,} sockets ({plan.stable} stable), {args.duration:g} min, {plan.backend} backend, "
        f"uvicorn",
        flush=True,
    )
    result = run(plan)
    print()
    print(result.table())
    print(f"\n({result.seconds:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=2))
    if result.problems:
        for problem in result.problems:
            print(f"FAIL: {problem}", file=sys.stderr)
        return 1
    print("PASS: nothing lost, every figure back to its baseline, no traceback")
    return 0


if __name__ == "__main__":
    sys.exit(main())
