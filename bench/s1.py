"""S1 local fan-out: N subscribers on one channel of one server process, B paced broadcasts.

Broadcasts are paced by completion: broadcast ``seq + 1`` is published once every load generator
reported that all its clients received ``seq`` (or a timeout passed). So latency is the fan-out
time of one broadcast, not a queue, and deliveries/s is what one process sustains that way.
Server CPU is read with psutil around the broadcast loop; the load generators' CPU likewise.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field
from typing import Any

from .procs import LoadGen, cpu_seconds


@dataclass
class Cell:
    """One measured row of the table."""

    scenario: str
    target: str
    label: str
    n: int
    broadcasts: int = 0
    deliveries: int = 0
    lost: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    loadgen_cpu: float = 0.0
    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    rss_per_conn_kib: float | None = None
    idle_cpu_pct: float | None = None
    redis_per_broadcast: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float | None:
        return self.deliveries / self.seconds if self.seconds else None

    @property
    def per_cpu_second(self) -> float | None:
        return self.deliveries / self.server_cpu if self.server_cpu > 0 else None

    @property
    def bottleneck(self) -> str:
        if not self.seconds or not self.deliveries:
            return ""
        return "loadgen" if self.loadgen_cpu > self.server_cpu else "server"


def percentiles(values: array) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    ordered = sorted(values)
    n = len(ordered)

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] * 1000.0

    return at(0.50), at(0.99), ordered[-1] * 1000.0


def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


def connect(
    loadgen: LoadGen, urls: list[str], marker: bytes, concurrency: int = 100, compress: bool = False
) -> tuple[int, int, float]:
    """Open ``urls`` across the generators; (ok, failed, seconds)."""
    replies = loadgen.call_each(
        [("connect", chunk, marker, concurrency, compress) for chunk in split(urls, len(loadgen.pipes))],
        timeout=300,
    )
    ok = sum(r[1] for r in replies)
    failed = sum(r[2] for r in replies)
    if failed:
        print(f"   ! {failed} connections failed, e.g. {[r[4] for r in replies if r[4]][:1]}")
    return ok, failed, max(r[3] for r in replies)


def counted(loadgen: LoadGen) -> list[int]:
    return [r[2] for r in loadgen.call_all(("ping",))]


def collect(loadgen: LoadGen) -> tuple[int, array]:
    received, lat = 0, array("d")
    for reply in loadgen.call_all(("stats",)):
        received += reply[1]
        chunk = array("d")
        chunk.frombytes(reply[2])
        lat.extend(chunk)
    return received, lat


def broadcast_loop(
    target: Any,
    loadgen: LoadGen,
    cell: Cell,
    *,
    broadcasts: int,
    budget: float,
    min_broadcasts: int,
    per_timeout: float,
    channel: str = "bench",
) -> Cell:
    """Publish paced broadcasts and fill ``cell`` with throughput, CPU, latency and loss."""
    per_worker = counted(loadgen)
    expected_n = sum(per_worker)
    loadgen.reset()
    pids = [target.pid] if isinstance(target.pid, int) else list(target.pid)
    cpu0 = sum(cpu_seconds(p) for p in pids)
    lg0 = loadgen.cpu()
    start = time.monotonic()
    sent = 0
    for seq in range(broadcasts):
        target.publish(seq, channel)
        sent += 1
        complete = _wait(loadgen, per_worker, seq, per_timeout)
        if not complete:
            cell.note = f"broadcast {seq} incomplete after {per_timeout:.0f}s"
        if sent >= min_broadcasts and time.monotonic() - start > budget:
            break
    elapsed = time.monotonic() - start
    cpu1 = sum(cpu_seconds(p) for p in pids)
    lg1 = loadgen.cpu()
    received, lat = collect(loadgen)
    cell.broadcasts = sent
    cell.n = expected_n
    cell.deliveries = received
    cell.lost = max(0, sent * expected_n - received)
    cell.seconds = elapsed
    cell.server_cpu = cpu1 - cpu0
    cell.loadgen_cpu = lg1 - lg0
    cell.p50, cell.p99, cell.max = percentiles(lat)
    if sent < broadcasts:
        cell.note = (cell.note + "; " if cell.note else "") + f"{sent} broadcasts (time budget)"
    return cell


def _wait(loadgen: LoadGen, per_worker: list[int], seq: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for index, pipe in enumerate(loadgen.pipes):
        if not per_worker[index]:
            continue
        while seq not in loadgen.dones[index]:
            left = deadline - time.monotonic()
            if left <= 0 or not pipe.poll(left):
                return False
            msg = pipe.recv()
            if msg[0] == "done":
                loadgen.dones[index].add(msg[1])
    return True


def run_s1(
    target: Any,
    loadgen: LoadGen,
    sizes: list[int],
    *,
    broadcasts: int,
    budget: float,
    min_broadcasts: int,
    per_timeout: float,
    profile: bool = False,
) -> list[Cell]:
    """S1 for one target at each N (clients are added between sizes, never reconnected)."""
    cells = []
    have = 0
    target.start()
    try:
        for n in sizes:
            urls = [target.url() for _ in range(n - have)]
            ok, failed, secs = connect(loadgen, urls, target.marker)
            have = sum(counted(loadgen))
            print(f"   {target.name}: {have} subscribers ({len(urls)} new in {secs:.1f}s)", flush=True)
            cell = Cell("S1", target.name, target.label, have)
            broadcast_loop(
                target,
                loadgen,
                cell,
                broadcasts=broadcasts,
                budget=budget,
                min_broadcasts=min_broadcasts,
                per_timeout=per_timeout,
            )
            cell.n = n
            if have < n:
                cell.note = (cell.note + "; " if cell.note else "") + f"only {have} connected"
            print(f"   -> {fmt_cell(cell)}", flush=True)
            cells.append(cell)
            if profile and n == sizes[-1]:
                cell.extra["profile"] = profile_pass(target, loadgen, broadcasts, per_timeout)
    finally:
        loadgen.call_all(("close",), timeout=120)
        target.stop()
    return cells


def profile_pass(target: Any, loadgen: LoadGen, broadcasts: int, per_timeout: float) -> str:
    """An extra, unmeasured broadcast loop sampled with py-spy; its summary table."""
    from .profiling import Profile

    scratch = Cell("profile", target.name, target.label, 0)
    with Profile(target.pid) as prof:
        broadcast_loop(
            target,
            loadgen,
            scratch,
            broadcasts=broadcasts,
            budget=60.0,
            min_broadcasts=broadcasts,
            per_timeout=per_timeout,
        )
    return prof.summary()


def fmt_cell(cell: Cell) -> str:
    def f(v: float | None, spec: str = ".0f") -> str:
        return "-" if v is None else format(v, spec)

    return (
        f"N={cell.n} B={cell.broadcasts} {f(cell.per_second)}/s {f(cell.per_cpu_second)}/cpu-s "
        f"p50={f(cell.p50, '.1f')} p99={f(cell.p99, '.1f')} max={f(cell.max, '.1f')}ms lost={cell.lost} "
        f"srv_cpu={cell.server_cpu:.2f}s lg_cpu={cell.loadgen_cpu:.2f}s {cell.note}"
    )
