"""S5 ingress: many channels, one subscriber each; the ways a message gets in, against their limits.

Per-user notifications, chat rooms, order updates: many channels with a few subscribers each.
200 sockets each subscribe to their own channel ``s5.<i>``; event ``seq`` goes to channel
``s5.<seq % 200>``, so each event is one delivery and what is measured is the cost of getting a
message *in*, not fan-out. Measured side by side in one run, each against its limit:

HTTP, the server pinned to the first CPU, the HTTP client in the load generators on the last
(a closed loop: each keep-alive connection waits for its answer before the next request; requests
built and signed by the PyPI ``pusher`` SDK), at two loads: one request at a time (each request a
wakeup of its own; the targets are held there) and 16 connections (the server saturated):

- limit: a bare ASGI app (``bench/peers/bare_asgi.py``) reading the JSON body and answering 200,
  on the same uvicorn, sent the same requests;
- the Pusher HTTP API, ``POST /apps/{id}/events`` with one event per request;
- ``POST /apps/{id}/batch_events`` with 10 events per request.

Redis, a private redis-server; each publisher is a plain sync process on the last CPU (``bench/
s5_publisher.py``) calling as fast as it can, the receiving server pinned to the first CPU:

- limit: a bare redis-py ``PUBLISH`` loop (publisher CPU per call);
- the ``redis`` driver, sync ``broadcast_to_channel()`` (publisher CPU per call), and the
  receiving server (server CPU per event, from the first publish to the last frame received);
- peer: plain Channels, ``async_to_sync(layer.group_send)`` over channels-redis, publisher and
  receiving server (one consumer per socket, ``bench/peers/channels_peer``).

CPU is user + system time from /proc (psutil) of the measured process around the measured loop,
after a warm-up. Every event is counted at the clients: lost = events accepted - distinct events
received. The targets are evaluated in ``targets.py``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import procs
from .procs import LoadGen, cpu_seconds
from .s1 import Cell, connect, percentiles
from .scenarios import s3_env
from .targets import PAD, ChannelsPeer, Project, Target

#: Pusher app of the S5 servers (the PyPI SDK wants a numeric id).
APP = ("5", "bench-s5-key", "bench-s5-secret-0123456789abcdef")
PUSHER_ENV = {"PUSHER_APP_ID": APP[0], "PUSHER_APP_KEY": APP[1], "PUSHER_APP_SECRET": APP[2]}
#: Each pass numbers its events from its own base, so a late frame of one pass cannot count in another.
PASS_STRIDE = 1_000_000_000
WORKER_STRIDE = 100_000_000
#: py-spy samples per second: the receiving server is busy a few % of the time, so sample densely.
PROFILE_RATE = 1000


@dataclass(frozen=True)
class Sizes:
    """How much of everything: the full run's, or the smoke run's toy sizes."""

    sockets: int = 200
    http_seconds: float = 10.0
    http_loads: tuple[int, ...] = (1, 16)  # HTTP client connections (closed loop); targets use the first
    publish_seconds: float = 10.0
    publish_max: int = 10_000_000
    warmup_seconds: float = 1.0
    warmup_events: int = 200
    profile_seconds: float = 8.0
    delivery_timeout: float = 30.0


FULL = Sizes()
SMOKE = Sizes(
    sockets=20,
    http_seconds=0.5,
    http_loads=(1, 4),
    publish_seconds=0.5,
    publish_max=400,
    warmup_seconds=0.2,
    warmup_events=10,
    profile_seconds=0.5,
    delivery_timeout=15.0,
)


def channel_names(n: int) -> list[str]:
    """The S5 channels (``bench/s5_publisher.py`` names them the same way)."""
    return [f"s5.{i}" for i in range(n)]


# -- measuring helpers -----------------------------------------------------------------------------
def await_frames(loadgen: LoadGen, expected: int, stall: float) -> tuple[int, int]:
    """Wait until the clients saw ``expected`` distinct events, or nothing arrived for ``stall`` s."""
    last, since = -1, time.monotonic()
    while True:
        replies = loadgen.call_all(("count",))
        received, distinct = sum(r[1] for r in replies), sum(r[2] for r in replies)
        if distinct >= expected:
            return received, distinct
        if distinct != last:
            last, since = distinct, time.monotonic()
        elif time.monotonic() - since > stall:
            return received, distinct
        time.sleep(0.01)


def frame_stats(loadgen: LoadGen) -> tuple[int, int, Any]:
    """Frames received, distinct events among them, and their latencies (since the last reset)."""
    received, distinct, lat = 0, 0, array("d")
    for reply in loadgen.call_all(("stats",)):
        received += reply[1]
        distinct += len(reply[3])
        chunk = array("d")
        chunk.frombytes(reply[2])
        lat.extend(chunk)
    return received, distinct, lat


def fill(
    cell: Cell, *, events: int, seconds: float, cpu: float, loadgen: LoadGen | None, counted: bool
) -> Cell:
    """Put a measured run in ``cell``; with ``counted``, the frames the sockets received too."""
    cell.broadcasts = events
    cell.seconds = seconds
    cell.server_cpu = cpu
    cell.extra["counted"] = counted
    if counted and loadgen is not None:
        received, distinct, lat = frame_stats(loadgen)
        cell.deliveries = received
        cell.lost = max(0, events - distinct)
        cell.p50, cell.p99, cell.max = percentiles(lat)
        if received > distinct:
            cell.note = (cell.note + "; " if cell.note else "") + f"{received - distinct} duplicate frames"
    return cell


def per_event_us(cell: Cell) -> float | None:
    return cell.server_cpu / cell.broadcasts * 1e6 if cell.broadcasts and cell.server_cpu > 0 else None


# -- HTTP ---------------------------------------------------------------------------------------
class BareAsgi(Target):
    """The bare ASGI app of ``bench/peers/bare_asgi.py`` on the same uvicorn as the project."""

    name = "bare-asgi"
    label = "limit: bare ASGI app reading the JSON body, answering 200 (same uvicorn, same requests)"

    def make_proc(self) -> procs.Proc:
        port = procs.free_port()
        argv = procs.uvicorn_argv("bench.peers.bare_asgi:app", port)
        return procs.Proc("bare-asgi", argv, procs.base_env(), port)


class BareReceiver(Target):
    """The Redis-to-WebSocket relay of ``bench/peers/bare_receiver.py``: the receiving path's floor."""

    name = "bare-receive"
    label = (
        "floor: bare Redis-to-WebSocket relay (hiredis pub/sub, `websockets.broadcast()`, uvloop), fan-out 1"
    )

    def make_proc(self) -> procs.Proc:
        port = procs.free_port()
        argv = [sys.executable, "-m", "bench.peers.bare_receiver", str(port), str(self.redis_port)]
        return procs.Proc(self.name, argv, procs.base_env({"BENCH_REDIS_PORT": str(self.redis_port)}), port)


def http_pass(
    target: Target,
    loadgen: LoadGen,
    kind: str,
    sizes: Sizes,
    connections: int,
    seq0: int,
    seconds: float,
    counted: bool,
) -> dict[str, Any]:
    """One closed-loop HTTP run of ``kind`` (``events`` or ``batch``) over ``connections``."""
    names = channel_names(sizes.sockets)
    loadgen.reset()
    workers = len(loadgen.pipes)
    per_worker = [connections // workers + (1 if w < connections % workers else 0) for w in range(workers)]
    cpu0, lg0 = cpu_seconds(target.pid), loadgen.cpu()
    commands = [
        ("http", target.port, kind, APP, names, per_worker[w], seconds, seq0 + w * WORKER_STRIDE, PAD)
        for w in range(workers)
    ]
    replies = loadgen.call_each(commands, timeout=seconds + 120)
    events = sum(r[2] for r in replies)
    if counted:
        await_frames(loadgen, events, sizes.delivery_timeout)
    cpu1, lg1 = cpu_seconds(target.pid), loadgen.cpu()
    errors = sum(r[3] for r in replies)
    first_error = next((r[5] for r in replies if r[5]), "")
    return {
        "requests": sum(r[1] for r in replies),
        "events": events,
        "errors": errors,
        "first_error": first_error,
        "seconds": max(r[4] for r in replies),
        "cpu": cpu1 - cpu0,
        "client_cpu": lg1 - lg0,
        "connections": connections,
    }


def http_cell(
    target_name: str, label: str, limit: str, result: dict[str, Any], loadgen: LoadGen, counted: bool
) -> Cell:
    cell = Cell("S5", target_name, label, 0)
    cell.extra.update(measured="server", requests=result["requests"], limit=limit, errors=result["errors"])
    cell.note = f"{result['requests']:,} requests"
    if result["errors"]:
        cell.note += f", {result['errors']} failed (e.g. {result['first_error'][:120]})"
    cell.loadgen_cpu = result["client_cpu"]
    if result["connections"] > 1 and cell.loadgen_cpu > result["cpu"]:
        # The client, not the server, set the pace: the server was not saturated. (With one
        # connection, client and server take turns by design.)
        cell.note += f"; client-bound (client CPU {cell.loadgen_cpu:.1f} s > server {result['cpu']:.1f} s)"
    return fill(
        cell,
        events=result["events"],
        seconds=result["seconds"],
        cpu=result["cpu"],
        loadgen=loadgen,
        counted=counted,
    )


def load_name(base: str, connections: int, first: int) -> str:
    """Target name of an HTTP row: ``api-events`` at the first load, ``api-events-16`` at 16."""
    return base if connections == first else f"{base}-{connections}"


def load_label(connections: int) -> str:
    return "one request at a time" if connections == 1 else f"{connections} connections"


def run_http(loadgen: LoadGen, sizes: Sizes, profile: bool) -> list[Cell]:
    """The bare ASGI app, then the HTTP API single and batched, at each client load."""
    cells: list[Cell] = []
    first = sizes.http_loads[0]
    bare = BareAsgi()
    bare.start()
    try:
        for index, connections in enumerate(sizes.http_loads):
            base = 2 * index * PASS_STRIDE
            http_pass(bare, loadgen, "events", sizes, connections, base, sizes.warmup_seconds, counted=False)
            result = http_pass(
                bare,
                loadgen,
                "events",
                sizes,
                connections,
                base + PASS_STRIDE,
                sizes.http_seconds,
                counted=False,
            )
            name = load_name(bare.name, connections, first)
            label = f"limit: bare ASGI app, JSON POST -> 200 (same uvicorn, same requests), {load_label(connections)}"
            cell = http_cell(name, label, "", result, loadgen, counted=False)
            cells.append(cell)
            print(f"   {fmt(cell)}", flush=True)
    finally:
        bare.stop()

    project = Project("uvicorn", env=dict(PUSHER_ENV))
    project.start()
    try:
        urls = [project.url(name) for name in channel_names(sizes.sockets)]
        ok, failed, secs = connect(loadgen, urls, project.marker)
        print(f"   project-uvicorn: {ok} sockets on {ok} channels in {secs:.1f}s", flush=True)
        plan = [
            ("api-events", "events", "HTTP API `POST /apps/{id}/events`, 1 event per request"),
            ("api-batch", "batch", "HTTP API `POST /apps/{id}/batch_events`, 10 events per request"),
        ]
        seq = 10 * PASS_STRIDE
        for name, kind, label in plan:
            for connections in sizes.http_loads:
                http_pass(project, loadgen, kind, sizes, connections, seq, sizes.warmup_seconds, counted=True)
                result = http_pass(
                    project,
                    loadgen,
                    kind,
                    sizes,
                    connections,
                    seq + PASS_STRIDE,
                    sizes.http_seconds,
                    counted=True,
                )
                seq += 2 * PASS_STRIDE
                cell = http_cell(
                    load_name(name, connections, first),
                    f"{label}, {load_label(connections)}",
                    load_name("bare-asgi", connections, first),
                    result,
                    loadgen,
                    counted=True,
                )
                cell.n = ok
                cells.append(cell)
                print(f"   {fmt(cell)}", flush=True)
        if profile:
            from .profiling import Profile

            busiest = sizes.http_loads[-1]
            with Profile(project.pid, rate=PROFILE_RATE, gil=True) as prof:
                http_pass(
                    project, loadgen, "events", sizes, busiest, seq, sizes.profile_seconds, counted=True
                )
            row = next(c for c in cells if c.target == load_name("api-events", busiest, first))
            row.extra["profile"] = prof.summary(top=15)
            row.extra["profile_of"] = "the server during an extra run of the same requests"
    finally:
        loadgen.call_all(("close",), timeout=120)
        project.stop()
    return cells


# -- Redis --------------------------------------------------------------------------------------
class Publisher:
    """A ``bench.s5_publisher`` process, pinned with the load generators, driven over its stdin."""

    def __init__(self, mode: str, env: dict[str, str]) -> None:
        fd, self.log_path = tempfile.mkstemp(prefix=f"bench-s5-{mode}-", suffix=".log")
        self.log = open(fd, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.s5_publisher", mode],
            cwd=procs.REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            start_new_session=True,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"S5 publisher {mode} did not start:\n{self.log_tail()}")
        procs.pin(self.proc.pid, procs.loadgen_cpus())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def run(self, seq0: int, most: int, seconds: float, channels: int) -> tuple[int, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"run {seq0} {most} {seconds} {channels}\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().split()
        if not answer or answer[0] != "done":
            raise RuntimeError(f"S5 publisher failed:\n{self.log_tail()}")
        return int(answer[1]), float(answer[2])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def publish_pass(
    publisher: Publisher,
    server: Target | None,
    loadgen: LoadGen,
    sizes: Sizes,
    seq0: int,
    *,
    warmup: bool = False,
) -> dict[str, Any]:
    """One publisher run; with a server, wait for every event at the clients."""
    loadgen.reset()
    most = sizes.warmup_events if warmup else sizes.publish_max
    seconds = 0.0 if warmup else sizes.publish_seconds
    p0 = cpu_seconds(publisher.pid)
    s0 = cpu_seconds(server.pid) if server else 0.0
    t0 = time.monotonic()
    count, elapsed = publisher.run(seq0, most, seconds, sizes.sockets)
    p1 = cpu_seconds(publisher.pid)
    if server is not None:
        await_frames(loadgen, count, sizes.delivery_timeout)
    s1 = cpu_seconds(server.pid) if server else 0.0
    return {
        "events": count,
        "seconds": elapsed,
        "window": time.monotonic() - t0,
        "pub_cpu": p1 - p0,
        "srv_cpu": s1 - s0,
    }


def publisher_cells(
    result: dict[str, Any], loadgen: LoadGen, pub: tuple[str, str], recv: tuple[str, str] | None
) -> list[Cell]:
    """The publisher's row and, when a server received the events, the receiving server's row."""
    cells = []
    cell = Cell("S5", pub[0], pub[1], 0)
    cell.extra.update(measured="publisher", limit="bare-publish")
    fill(
        cell,
        events=result["events"],
        seconds=result["seconds"],
        cpu=result["pub_cpu"],
        loadgen=loadgen,
        counted=recv is not None,
    )
    cells.append(cell)
    if recv is not None:
        rcell = Cell("S5", recv[0], recv[1], 0)
        # The receiving server handles one message per wakeup at these rates, as the bare app
        # handles one request at a time: that is the limit it is held to.
        rcell.extra.update(measured="server", limit="bare-asgi")
        fill(
            rcell,
            events=result["events"],
            seconds=result["window"],
            cpu=result["srv_cpu"],
            loadgen=loadgen,
            counted=True,
        )
        cells.append(rcell)
    return cells


def run_receiving(
    server: Target,
    mode: str,
    loadgen: LoadGen,
    sizes: Sizes,
    base: int,
    pub: tuple[str, str],
    recv: tuple[str, str],
    url: Any,
    profile: bool,
) -> list[Cell]:
    """Start ``server``, subscribe one socket per channel, publish from a ``mode`` publisher."""
    server.start()
    publisher: Publisher | None = None
    try:
        names = channel_names(sizes.sockets)
        ok, failed, secs = connect(loadgen, [url(server, name) for name in names], server.marker)
        print(f"   {server.name}: {ok} sockets on {ok} channels in {secs:.1f}s", flush=True)
        env = dict(server.proc.env)  # type: ignore[union-attr]
        publisher = Publisher(mode, env)
        publish_pass(publisher, server, loadgen, sizes, base, warmup=True)
        result = publish_pass(publisher, server, loadgen, sizes, base + PASS_STRIDE)
        cells = publisher_cells(result, loadgen, pub, recv)
        for cell in cells:
            cell.n = ok
            print(f"   {fmt(cell)}", flush=True)
        if profile:
            from .profiling import Profile

            short = Sizes(**{**sizes.__dict__, "publish_seconds": sizes.profile_seconds})
            with (
                Profile(publisher.pid, rate=PROFILE_RATE, gil=True) as pub_prof,
                Profile(server.pid, rate=PROFILE_RATE, gil=True) as srv_prof,
            ):
                publish_pass(publisher, server, loadgen, short, base + 2 * PASS_STRIDE)
            cells[0].extra["profile"] = pub_prof.summary(top=15)
            cells[0].extra["profile_of"] = "the publisher process during an extra run"
            cells[1].extra["profile"] = srv_prof.summary(top=15)
            cells[1].extra["profile_of"] = "the receiving server during the same extra run"
        return cells
    finally:
        if publisher is not None:
            publisher.stop()
        loadgen.call_all(("close",), timeout=120)
        server.stop()


def run_redis(loadgen: LoadGen, redis: procs.Proc, sizes: Sizes, profile: bool) -> list[Cell]:
    cells: list[Cell] = []
    port = redis.port or 0
    # The limit: redis-py PUBLISH from a plain process, nothing else.
    publisher = Publisher("bare", procs.base_env({"BENCH_REDIS_PORT": str(port)}))
    try:
        publish_pass(publisher, None, loadgen, sizes, 0, warmup=True)
        result = publish_pass(publisher, None, loadgen, sizes, 0)
    finally:
        publisher.stop()
    cell = Cell("S5", "bare-publish", "limit: bare redis-py `PUBLISH` loop", 0)
    cell.extra.update(measured="publisher", limit="")
    fill(
        cell,
        events=result["events"],
        seconds=result["seconds"],
        cpu=result["pub_cpu"],
        loadgen=None,
        counted=False,
    )
    cells.append(cell)
    print(f"   {fmt(cell)}", flush=True)

    # The floor of the receiving path: the bare PUBLISH loop's messages relayed verbatim to the
    # sockets by a bare Python process (its publisher row repeats the limit above: not shown).
    cells += run_receiving(
        BareReceiver(redis_port=port),
        "bare",
        loadgen,
        sizes,
        4 * PASS_STRIDE,
        ("bare-publish-relayed", "bare `PUBLISH` loop, relayed"),
        (BareReceiver.name, BareReceiver.label),
        lambda target, name: f"ws://127.0.0.1:{target.port}/{name}",
        False,
    )[1:]

    env, how = s3_env(port)
    project = Project("uvicorn", env={**env, **PUSHER_ENV})
    cells += run_receiving(
        project,
        "project",
        loadgen,
        sizes,
        7 * PASS_STRIDE,
        ("redis-publish", f"{how}, sync `broadcast_to_channel()` from a plain process"),
        ("redis-receive", f"{how}, receiving server (fan-out 1)"),
        lambda target, name: target.url(name),
        profile,
    )
    peer = ChannelsPeer("redis", redis_port=port)
    cells += run_receiving(
        peer,
        "channels",
        loadgen,
        sizes,
        10 * PASS_STRIDE,
        ("channels-publish", "peer: plain Channels `async_to_sync(layer.group_send)`, channels-redis"),
        ("channels-receive", "peer: plain Channels receiving server (a consumer per socket), channels-redis"),
        lambda target, name: f"ws://127.0.0.1:{target.port}/ws/{name}",
        False,
    )
    return cells


def run_s5(loadgen: LoadGen, redis: procs.Proc | None, *, smoke: bool, profile: bool) -> list[Cell]:
    sizes = SMOKE if smoke else FULL
    cells = run_http(loadgen, sizes, profile)
    if redis is not None:
        cells += run_redis(loadgen, redis, sizes, profile)
    return cells


def fmt(cell: Cell) -> str:
    us = per_event_us(cell)
    rate = cell.broadcasts / cell.seconds if cell.seconds else 0.0
    lost = f" lost={cell.lost}" if cell.extra.get("counted") else ""
    cost = f"{us:.0f} us" if us is not None else "-"
    return (
        f"{cell.target}: {cell.broadcasts:,} events {rate:,.0f}/s, {cell.extra.get('measured')} CPU "
        f"{cost}/event{lost} {cell.note}"
    )
