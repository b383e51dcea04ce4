"""``python -m bench``: run the scenarios side by side, print one table, write docs/performance.md.

python -m bench                 # full run (under 10 minutes on 2 cores), writes docs/performance.md
python -m bench --smoke         # seconds: tiny N, few broadcasts, prints only (CI keeps it from rotting)
python -m bench --only S1,S2 --targets project-uvicorn,raw-websockets --no-write
python -m bench --only S5       # ingress over many channels; rewrites only its own section
python -m bench --only S6       # reconnect storm with recovery; rewrites only its own section
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from . import procs, report
from .procs import LoadGen
from .s1 import Cell, fmt_cell, run_s1
from .s5 import run_s5
from .s6 import run_s6
from .scenarios import run_s2, run_s3, run_s4
from .targets import ChannelsPeer, Project, RawWebsockets

MEMORY_LAYER_MAX_N = 5000
ALL_TARGETS = (
    "project-uvicorn",
    "project-daphne",
    "project-uvicorn-asgi",
    "project-uvicorn-sansio",
    "channels-memory",
    "channels-redis",
    "raw-websockets",
)
#: S1's servers unless ``--targets`` says otherwise (uvicorn's own protocol is S2's and S6's comparison).
DEFAULT_TARGETS = tuple(t for t in ALL_TARGETS if t != "project-uvicorn-sansio")


def make_target(name: str, redis_port: int | None, **options):
    if name == "project-uvicorn":
        return Project("uvicorn", **options)
    if name == "project-uvicorn-asgi":
        # The same server with direct writes off: every frame through the ASGI send.
        target = Project("uvicorn", env={"BROADCAST_DIRECT_WRITES": "false"}, **options)
        target.name, target.label = name, "django-broadcasting on uvicorn, DIRECT_WRITES off"
        return target
    if name == "project-uvicorn-sansio":
        # uvicorn's own websockets-sansio protocol instead of this project's front.
        target = Project("uvicorn", ws="websockets-sansio", **options)
        target.name = name
        return target
    if name == "project-daphne":
        return Project("daphne", **options)
    if name == "channels-memory":
        return ChannelsPeer("memory")
    if name == "channels-redis":
        return ChannelsPeer("redis", redis_port=redis_port)
    if name == "raw-websockets":
        return RawWebsockets()
    raise SystemExit(f"unknown target {name!r}; choose from {', '.join(ALL_TARGETS)}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes; seconds, not minutes; no docs written"
    )
    parser.add_argument("--only", default="S1,S2,S3,S3C,S4,S5,S6", help="scenarios to run (comma-separated)")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS), help="S1 servers (comma-separated)")
    parser.add_argument("--sizes", default=None, help="S1 subscriber counts, e.g. 1000,5000,10000")
    parser.add_argument("--broadcasts", type=int, default=None, help="S1 broadcasts per size (default 20)")
    parser.add_argument("--loadgens", type=int, default=2, help="load-generator processes")
    parser.add_argument("--out", default=None, help="markdown file to update (default docs/performance.md)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sample this project's servers with py-spy at the largest N in an extra, unmeasured "
        "loop, and S5's server and publisher (default: on for full runs when py-spy is installed)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    smoke = args.smoke
    # The driver signs trigger requests with the product's own code: configure Django for it.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    os.environ["BROADCAST_TRIGGER_SECRET"] = procs.BENCH_TRIGGER_SECRET
    import django

    django.setup()
    from .loadgen import raise_nofile

    raise_nofile()

    from .profiling import py_spy

    profile = args.profile if args.profile is not None else (not smoke and py_spy() is not None)
    scenarios = {s.strip().upper() for s in args.only.split(",") if s.strip()}
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    sizes = (
        [int(s) for s in args.sizes.split(",")] if args.sizes else ([20] if smoke else [1000, 5000, 10000])
    )
    broadcasts = args.broadcasts or (3 if smoke else 20)
    if smoke and not args.sizes:
        targets = [t for t in targets if t in ("project-uvicorn", "raw-websockets")]
    budget = 2.0 if smoke else 12.0  # seconds of broadcasting per S1 cell (at least 3 broadcasts)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    cells: list[Cell] = []
    s5_cells: list[Cell] = []
    s5_seconds = 0.0
    s6_cells: list[Cell] = []
    s6_seconds = 0.0
    s3c_cells: list = []
    s3c_seconds = 0.0
    notes: list[str] = []
    redis = None
    loadgen = LoadGen(args.loadgens)
    try:
        if not shutil.which("redis-server"):
            notes.append("S3, S5's Redis paths and the channels-redis peer not run: no redis-server on PATH.")
            scenarios.discard("S3")
            scenarios.discard("S3C")
            targets = [t for t in targets if t != "channels-redis"]
        elif {"S3", "S5", "S6"} & scenarios or ("S1" in scenarios and "channels-redis" in targets):
            redis = procs.redis_server().start()
        if "S1" in scenarios:
            print(f"S1 local fan-out: N={sizes}, {broadcasts} broadcasts of ~100 bytes", flush=True)
            for name in targets:
                target = make_target(name, redis.port if redis else None)
                ours = name.startswith("project-")
                run_sizes = sizes
                if name == "channels-memory" and not args.sizes:
                    # InMemoryChannelLayer's fan-out is quadratic (every receive walks every
                    # channel): 10,000 subscribers take minutes per broadcast.
                    run_sizes = [n for n in sizes if n <= MEMORY_LAYER_MAX_N]
                    for n in sizes:
                        if n > MEMORY_LAYER_MAX_N:
                            notes.append(
                                f"plain Channels with InMemoryChannelLayer not run at N={n:,}: its "
                                "fan-out is quadratic (see the N=5,000 row), minutes per broadcast."
                            )
                cells += run_s1(
                    target,
                    loadgen,
                    run_sizes,
                    broadcasts=broadcasts,
                    budget=(60.0 if ours else budget),
                    min_broadcasts=(broadcasts if ours else 3),
                    per_timeout=60.0,
                    profile=profile and ours,
                )
        if "S2" in scenarios:
            n = 50 if smoke else 10000
            idle = 0.5 if smoke else 8.0
            print(f"S2 idle memory: {n} connections", flush=True)
            plan = [("project-uvicorn", False), ("project-uvicorn", True)]
            if not smoke:
                plan += [
                    ("project-uvicorn-sansio", False),
                    ("project-daphne", False),
                    ("raw-websockets", False),
                ]
            for name, compress in plan:
                target = (
                    make_target(name, None, deflate=compress)
                    if name.startswith("project")
                    else make_target(name, None)
                )
                cell = run_s2(target, loadgen, n, compress=compress, idle_seconds=idle)
                print(
                    f"   {cell.label}: {cell.rss_per_conn_kib:.1f} KiB/conn, idle CPU {cell.idle_cpu_pct:.1f}%",
                    flush=True,
                )
                cells.append(cell)
        if "S3" in scenarios and redis is not None:
            n = 40 if smoke else 4000
            print(f"S3 cross-process: 2 servers + Redis, {n} subscribers", flush=True)
            cell = run_s3(loadgen, redis, n, broadcasts=broadcasts, budget=budget * 2)
            print(f"   -> {fmt_cell(cell)}", flush=True)
            cells.append(cell)
        if "S3C" in scenarios:  # S3 on a Redis Cluster of 3 primaries (bench/s3c.py)
            from .s3c import run_s3c

            print("S3c cross-process on a Redis Cluster of 3: 1-4 servers, 1-12 channels", flush=True)
            s3c_cells, s3c_seconds = run_s3c(loadgen, smoke=smoke)
        if "S4" in scenarios:
            stable = 20 if smoke else 200
            duration = 1.5 if smoke else 10.0
            print(f"S4 churn: {stable} stable presence subscribers, 120 joins+leaves/s", flush=True)
            cell = run_s4(loadgen, stable=stable, churn_rate=120.0, duration=duration, tick_rate=10.0)
            print(f"   -> {fmt_cell(cell)}", flush=True)
            cells.append(cell)
        if "S5" in scenarios:
            s5_started = time.monotonic()
            print("S5 ingress: many channels, one subscriber each", flush=True)
            s5_cells = run_s5(loadgen, redis, smoke=smoke, profile=profile)
            s5_seconds = time.monotonic() - s5_started
        if "S6" in scenarios:
            s6_started = time.monotonic()
            s6_cells = run_s6(loadgen, redis, smoke=smoke, profile=profile)
            s6_seconds = time.monotonic() - s6_started
    finally:
        loadgen.stop()
        if redis is not None:
            redis.stop()
    seconds = time.monotonic() - started
    notes += [
        f"Machine load average (1 min) {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: other "
        "work on the machine competes for its CPUs, which stretches wall-clock figures (deliveries/s, latency) more "
        "than CPU-time ones; compare rows of one run.",
        "Deliveries per server CPU-second = frames received by clients / CPU time (user+system, psutil) the server "
        "process(es) used during the broadcast loop; it includes handling the publish requests.",
        "Bottleneck: the side (server or load generators) that used more CPU during the loop; on 2 cores they compete.",
        "Latency: publish time stamped in the payload by the publisher -> receipt in the load generator, same clock.",
    ]
    out = Path(args.out) if args.out else procs.REPO / "docs" / "performance.md"
    write = not args.no_write and (args.out is not None or not smoke)
    if cells:
        body = report.render(
            cells, mode="smoke" if smoke else "full", seconds=seconds - s5_seconds - s3c_seconds, notes=notes
        )
        print()
        print(body)
        if write:
            report.write(out, body)
            print(f"written to {out}")
    if s5_cells:
        command = "python -m bench" + ("" if cells else " --only S5")
        body = report.render_s5(
            s5_cells,
            mode="smoke" if smoke else "full",
            seconds=s5_seconds,
            notes=s5_notes(notes),
            command=command,
        )
        print()
        print(body)
        if write:
            report.write(out, body, report.S5_BEGIN, report.S5_END)
            print(f"S5 written to {out}")
    if s3c_cells:
        from . import s3c

        body = s3c.render(s3c_cells, mode="smoke" if smoke else "full", seconds=s3c_seconds)
        print()
        print(body)
        if write:
            report.write(out, body, s3c.BEGIN, s3c.END)
            print(f"S3c written to {out}")
    if s6_cells:
        body = report.render_s6(
            s6_cells,
            mode="smoke" if smoke else "full",
            seconds=s6_seconds,
            notes=s6_notes(notes),
            command="python -m bench" + ("" if cells or s5_cells else " --only S6"),
        )
        print()
        print(body)
        if write:
            report.write(out, body, report.S6_BEGIN, report.S6_END)
            print(f"S6 written to {out}")
    return 0


def s5_notes(notes: list[str]) -> list[str]:
    """The notes under the S5 table: the machine's load, how each figure is measured."""
    load = [n for n in notes if n.startswith(("Machine load", "S3, S5"))]
    return load + [
        "CPU per event: user + system CPU time (from /proc, psutil) of the process named in *CPU of* during "
        "the measured loop, divided by the events; a batch request's CPU is divided by its 10 events. The "
        "server is pinned to the first CPU, the load generators (WebSocket clients, HTTP client) and the "
        "publisher processes to the last.",
        "HTTP: a closed loop, each keep-alive connection sending its next request when the last one is "
        "answered, at two loads: one request at a time (every request a wakeup of its own; the targets are "
        "held there) and 16 connections (the server saturated: events/s); requests built and signed by the "
        "PyPI `pusher` SDK. The bare ASGI app gets the same single-event requests at the same loads on the "
        "same uvicorn, and has no socket to deliver to. Client-bound: the client used more CPU than the "
        "server, which was then not saturated.",
        "Publishers: one plain sync process calling as fast as it can for the measured time; the receiving "
        "server's CPU runs from the first publish to the last frame received.",
        "Lost: events accepted (HTTP 200, or the call returned) minus distinct events received by the "
        "sockets. Latency: time stamped by the client or publisher -> receipt, one clock.",
    ]


def s6_notes(notes: list[str]) -> list[str]:
    """The notes under the S6 table."""
    load = [n for n in notes if n.startswith(("Machine load", "S3, S5"))]
    return load + [
        "CPU per client: user + system CPU time (psutil) of the server process from the first connect to "
        "the last client's answer (`subscribed`, `ready` for the raw server, `recovered` in the storm), "
        "divided by the clients. The server is pinned to the first CPU, the load generators to the last; "
        "each generator keeps up to 1,500 handshakes in flight.",
        "The raw `websockets` server does the handshake and adds the socket to its broadcast set: no "
        "channel name, no authorization, no JSON. This project parses the URL's channel, authorizes it, "
        "registers the socket with the hub and answers `connected` and `subscribed`.",
        "RSS/conn: growth of the server's resident memory from before the connects to 3 s after the last, "
        "divided by the connections (idle, subscribed, no compression).",
        "Storm: the `redis` driver with a private redis-server, so the history outlives the server "
        "process. Clients hold `last_id`, the server is restarted (SIGTERM; uvicorn closes sockets with "
        "1012), broadcasts go out while it is down, then every client reconnects at once and subscribes "
        "with its `last_id` while a publisher keeps broadcasting (50/s) until the last `recovered` frame. "
        "Lost = deliveries expected (every message after the client's last_id) - distinct deliveries.",
    ]


if __name__ == "__main__":
    sys.exit(main())
