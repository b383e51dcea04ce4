"""S6 reconnect storm: every client comes back at once after a server restart, and recovers.

Measured side by side in one run, the server pinned to the first CPU and the load generators to
the last, CPU as user + system time of the server process (psutil) around each phase:

- **connect** (handshake + subscribe): N clients open a socket at once (up to ``CONCURRENCY`` per
  load generator in flight) on the limit, a raw ``websockets`` server (``bench/peers/
  raw_websockets.py``: handshake, then the socket joins its broadcast set and gets ``ready``), and
  on this project (in-memory default; ``/ws/s6.<k>``, answered by ``subscribed``). Server CPU per
  client, wall time, and RSS growth per connection once they are all idle.
- **storm** (the ``redis`` driver on a private redis-server, so the history outlives the
  process): N clients on C channels receive a few broadcasts; the server is restarted (SIGTERM:
  uvicorn closes every socket with 1012) and, while nobody is connected, more broadcasts go out;
  then all N reconnect at once, each sending ``subscribe`` with the ``last_id`` it had (docs/
  protocol.md, "Recovery"), while a publisher keeps broadcasting on every channel until the last
  ``recovered`` frame. Every client must end with every message published after its ``last_id``:
  lost = expected deliveries - distinct deliveries counted at the clients; resubscribed =
  ``recovered`` frames.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from . import procs
from .procs import LoadGen, cpu_seconds, rss_bytes
from .s1 import Cell, connect
from .scenarios import s3_env
from .targets import Project, RawWebsockets

#: Sockets each load generator opens at once: "all at once", short of the listen backlog (4096).
CONCURRENCY = 1500


@dataclass(frozen=True)
class Sizes:
    connect: tuple[int, ...] = (1000, 5000)
    storm: int = 5000
    channels: int = 10
    before: int = 3  # broadcasts per channel before the restart
    missed: int = 5  # broadcasts per channel while the server is down
    idle: float = 3.0  # seconds idle before RSS is read


FULL = Sizes()
SMOKE = Sizes(connect=(40,), storm=40, channels=4, before=2, missed=2, idle=0.5)


def _settle(pid: int, seconds: float) -> None:
    """Wait until the server's CPU stops moving (a finished phase's stragglers), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    last = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        if now - last < 0.005:
            return
        last = now


def connect_cell(target: Any, loadgen: LoadGen, n: int, urls: list[Any], marker: bytes, idle: float) -> Cell:
    """Open ``urls`` at once; the server's CPU per client, the wall time, RSS per idle connection."""
    _settle(target.pid, 3.0)
    rss0 = rss_bytes(target.pid)
    c0 = cpu_seconds(target.pid)
    ok, failed, secs = connect(loadgen, urls, marker, concurrency=CONCURRENCY)
    c1 = cpu_seconds(target.pid)
    time.sleep(idle)
    rss1 = rss_bytes(target.pid)
    cell = Cell("S6", target.name, target.label, n)
    cell.server_cpu = c1 - c0
    cell.seconds = secs
    cell.rss_per_conn_kib = (rss1 - rss0) / max(1, ok) / 1024
    cell.extra.update(phase="connect", ok=ok, failed=failed)
    if failed:
        cell.note = f"{failed} failed"
    loadgen.call_all(("close",), timeout=120)
    return cell


def run_connect(loadgen: LoadGen, sizes: Sizes, profile: bool = False) -> list[Cell]:
    cells = []
    sansio = Project("uvicorn", ws="websockets-sansio")
    sansio.name = "project-uvicorn-sansio"
    for target in (RawWebsockets(), Project("uvicorn"), sansio):
        target.start()
        try:
            # One small round first, so imports and first-use caches are not billed to N.
            connect(loadgen, [target.url("s6.warm") for _ in range(20)], target.marker)
            loadgen.call_all(("close",), timeout=120)
            for n in sizes.connect:
                urls = [target.url(f"s6.{i % sizes.channels}") for i in range(n)]
                cell = connect_cell(target, loadgen, n, urls, target.marker, sizes.idle)
                print(f"   {fmt(cell)}", flush=True)
                cells.append(cell)
            if profile and target.name == "project-uvicorn":
                from .profiling import Profile

                n = sizes.connect[-1]
                urls = [target.url(f"s6.{i % sizes.channels}") for i in range(n)]
                with Profile(target.pid, rate=1000, gil=True) as prof:
                    connect(loadgen, urls, target.marker, concurrency=CONCURRENCY)
                loadgen.call_all(("close",), timeout=120)
                cells[-1].extra["profile"] = prof.summary(top=20)
                cells[-1].extra["profile_of"] = (
                    f"{target.label} during an extra, unmeasured connect of {n:,} clients (`--gil`)"
                )
        finally:
            target.stop()
    return cells


class Observer:
    """One native socket on every channel, reading the ids the clients will recover from."""

    def __init__(self, port: int, channels: list[str]) -> None:
        from websockets.sync.client import connect as ws_connect

        self.ws = ws_connect(f"ws://127.0.0.1:{port}/ws", open_timeout=30)
        self.last: dict[str, str] = {}
        for channel in channels:
            self.ws.send(json.dumps({"action": "subscribe", "channel": channel}))
            self.wait(lambda f, c=channel: f.get("event") == "subscribed" and f.get("channel") == c)

    def wait(self, done: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if frame.get("event") == "tick" and frame.get("id"):
                self.last[frame["channel"]] = frame["id"]
            if done(frame):
                return

    def close(self) -> None:
        self.ws.close()


class StormPublisher(threading.Thread):
    """Broadcasts round robin over the channels until told to stop (the live traffic of the storm)."""

    def __init__(self, target: Project, channels: list[str], seq0: int, rate: float = 50.0) -> None:
        super().__init__(daemon=True)
        self.target, self.channels, self.seq, self.rate = target, channels, seq0, rate
        self.halt = threading.Event()
        self.sent: list[tuple[int, str]] = []
        self.error: str = ""

    def run(self) -> None:
        while not self.halt.is_set():
            channel = self.channels[self.seq % len(self.channels)]
            try:
                self.target.publish(self.seq, channel)
                self.sent.append((self.seq, channel))
            except Exception as exc:  # noqa: BLE001 - reported in the cell
                self.error = repr(exc)
                return
            self.seq += 1
            self.halt.wait(1.0 / self.rate)


def run_storm(loadgen: LoadGen, redis: procs.Proc, sizes: Sizes) -> list[Cell]:
    env, how = s3_env(redis.port or 0)
    target = Project("uvicorn", env=env)
    target.name, target.label = "project-uvicorn-redis", f"django-broadcasting on uvicorn, {how}"
    channels = [f"s6.storm.{k}" for k in range(sizes.channels)]
    n = sizes.storm
    target.start()
    try:
        urls = [target.url(channels[i % len(channels)]) for i in range(n)]
        ok, failed, _ = connect(loadgen, urls, target.marker, concurrency=CONCURRENCY)
        observer = Observer(target.port, channels)
        seq = 1
        for _ in range(sizes.before):
            for channel in channels:
                target.publish(seq, channel)
                seq += 1
        last_seq = seq - 1
        observer.wait(lambda f: f.get("event") == "tick" and f["data"]["seq"] == last_seq)
        last_ids = dict(observer.last)
        observer.close()
        # Restart on the same port; the clients see a 1012 close (uvicorn's "service restart").
        target.stop()
        loadgen.call_all(("close",), timeout=120)
        target.proc.start()  # type: ignore[union-attr]
        procs.pin(target.pid, procs.server_cpus())
        missed: list[tuple[int, str]] = []
        for _ in range(sizes.missed):
            for channel in channels:
                target.publish(seq, channel)
                missed.append((seq, channel))
                seq += 1
        # A socket on the fresh process, so the hub and its Redis link are up before the clock runs.
        connect(loadgen, [target.url("s6.warm")], target.marker)
        loadgen.call_all(("close",), timeout=120)
        loadgen.reset()
        _settle(target.pid, 3.0)
        storm_urls = [
            (
                f"ws://127.0.0.1:{target.port}/ws",
                json.dumps({"action": "subscribe", "channel": c, "last_id": last_ids[c]}),
            )
            for c in (channels[i % len(channels)] for i in range(n))
        ]
        publisher = StormPublisher(target, channels, seq)
        c0 = cpu_seconds(target.pid)
        publisher.start()
        ok2, failed2, secs = connect(loadgen, storm_urls, b'"event":"recovered"', concurrency=CONCURRENCY)
        c1 = cpu_seconds(target.pid)
        publisher.halt.set()
        publisher.join(30)
        expected_per_seq = n // len(channels)  # clients per channel (n is a multiple of the channels)
        sent = missed + publisher.sent
        expected = expected_per_seq * len(sent)
        received = _await_counts(loadgen, [s for s, _ in sent], expected_per_seq, timeout=60.0)
        delivered = sum(min(received.get(s, 0), expected_per_seq) for s, _ in sent)
        cell = Cell("S6", "storm", target.label, n)
        cell.server_cpu = c1 - c0
        cell.seconds = secs
        cell.broadcasts = len(sent)
        cell.lost = expected - delivered
        cell.extra.update(
            phase="storm",
            ok=ok2,
            failed=failed2,
            first_ok=ok,
            first_failed=failed,
            missed=len(missed),
            live=len(publisher.sent),
            expected=expected,
            publish_error=publisher.error,
        )
        notes = []
        if failed or failed2:
            notes.append(f"{failed} + {failed2} failed")
        if publisher.error:
            notes.append(f"publisher: {publisher.error[:80]}")
        cell.note = "; ".join(notes)
        print(f"   {fmt(cell)}", flush=True)
        return [cell]
    finally:
        loadgen.call_all(("close",), timeout=120)
        target.stop()


def _await_counts(loadgen: LoadGen, seqs: list[int], per_seq: int, timeout: float) -> dict[int, int]:
    """Distinct deliveries per broadcast, summed over the load generators, once complete or timed out."""
    deadline = time.monotonic() + timeout
    while True:
        totals: dict[int, int] = {}
        for reply in loadgen.call_all(("stats",)):
            for seq, count in reply[3].items():
                totals[seq] = totals.get(seq, 0) + count
        if all(totals.get(s, 0) >= per_seq for s in seqs) or time.monotonic() > deadline:
            return totals
        time.sleep(0.5)


def run_s6(loadgen: LoadGen, redis: procs.Proc | None, *, smoke: bool, profile: bool = False) -> list[Cell]:
    sizes = SMOKE if smoke else FULL
    print(f"S6 connect at once: N={list(sizes.connect)}, raw websockets vs this project", flush=True)
    cells = run_connect(loadgen, sizes, profile)
    if redis is not None:
        print(
            f"S6 reconnect storm: {sizes.storm:,} clients after a restart, with recovery (redis)", flush=True
        )
        cells += run_storm(loadgen, redis, sizes)
    return cells


def per_client_us(cell: Cell) -> float | None:
    ok = cell.extra.get("ok") or cell.n
    return cell.server_cpu / ok * 1e6 if ok and cell.server_cpu > 0 else None


def fmt(cell: Cell) -> str:
    us = per_client_us(cell)
    cost = f"{us:,.0f} us" if us is not None else "-"
    rss = f", {cell.rss_per_conn_kib:.1f} KiB/conn" if cell.rss_per_conn_kib is not None else ""
    lost = f", {cell.broadcasts} broadcasts, lost={cell.lost}" if cell.extra.get("phase") == "storm" else ""
    return (
        f"{cell.target} N={cell.n:,}: {cell.extra.get('ok', 0):,} ok in {cell.seconds:.2f}s, "
        f"server CPU {cell.server_cpu:.2f}s = {cost}/client{rss}{lost} {cell.note}"
    )
