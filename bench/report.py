"""The result tables: printed, and written between markers into docs/performance.md.

S1-S4 share one table between ``<!-- bench:begin -->`` and ``<!-- bench:end -->``; S5 has its own
table and block (``<!-- bench:s5:begin -->`` ... ``<!-- bench:s5:end -->``), so ``--only S5``
rewrites its section and leaves the fan-out results alone, and the other way round.
"""

from __future__ import annotations

import os
import platform
import re
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil

from .s1 import Cell

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
S5_BEGIN = "<!-- bench:s5:begin -->"
S5_END = "<!-- bench:s5:end -->"
S6_BEGIN = "<!-- bench:s6:begin -->"
S6_END = "<!-- bench:s6:end -->"
PACKAGES = (
    "django",
    "channels",
    "channels-redis",
    "daphne",
    "uvicorn",
    "websockets",
    "twisted",
    "uvloop",
    "redis",
    "django-broadcasting",
)
PRODUCT = ("project-uvicorn", "project-daphne")
PEERS = ("channels-memory", "channels-redis", "raw-websockets")


def _f(value: float | None, spec: str = ",.0f") -> str:
    return "–" if value is None else format(value, spec)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} CPU ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def table(cells: list[Cell]) -> str:
    head = (
        "| Scenario | Server | N | Broadcasts | Deliveries/s | Deliveries per server CPU-s | p50 ms | p99 ms "
        "| max ms | Lost | RSS/conn KiB | Idle CPU % | Redis cmds/broadcast | Bottleneck | Note |"
    )
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for c in cells:
        lines.append(
            f"| {c.scenario} | {c.label} | {c.n:,} | {c.broadcasts or '–'} | {_f(c.per_second)} | {_f(c.per_cpu_second)} "
            f"| {_f(c.p50, '.1f')} | {_f(c.p99, '.1f')} | {_f(c.max, '.1f')} | {c.lost if c.broadcasts else '–'} "
            f"| {_f(c.rss_per_conn_kib, '.1f')} | {_f(c.idle_cpu_pct, '.1f')} | {_f(c.redis_per_broadcast, '.1f')} "
            f"| {c.bottleneck or '–'} | {c.note} |"
        )
    return "\n".join(lines)


def ratios(cells: list[Cell]) -> str:
    """This project's deliveries per server CPU-second divided by each peer's, per N (S1)."""
    s1 = {(c.target, c.n): c for c in cells if c.scenario == "S1"}
    sizes = sorted({c.n for c in cells if c.scenario == "S1"})
    peers = [p for p in (*PEERS, "project-uvicorn-asgi") if any(t == p for t, _ in s1)]
    products = [p for p in PRODUCT if any(t == p for t, _ in s1)]
    if not peers or not products:
        return ""
    head = "| S1 ratio (deliveries per server CPU-s) | " + " | ".join(f"N={n:,}" for n in sizes) + " |"
    lines = [head, "|" + "|".join(["---"] * (len(sizes) + 1)) + "|"]
    for product in products:
        for peer in peers + [p for p in products if p != product]:
            row = []
            for n in sizes:
                a, b = s1.get((product, n)), s1.get((peer, n))
                if a and b and a.per_cpu_second and b.per_cpu_second:
                    row.append(f"{a.per_cpu_second / b.per_cpu_second:.2f}x")
                else:
                    row.append("–")
            lines.append(f"| {product} vs {peer} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def goals(cells: list[Cell]) -> str:
    """The issue's targets at the largest N, checked against this run."""
    s1 = {(c.target, c.n): c for c in cells if c.scenario == "S1"}
    sizes = sorted({n for t, n in s1 if t == "project-uvicorn"})
    if not sizes:
        return ""
    n = sizes[-1]
    ours = s1.get(("project-uvicorn", n))
    out = [f"Targets at N={n:,} (this project on uvicorn):"]

    def ratio(peer: str) -> float | None:
        other = s1.get((peer, n))
        if ours and other and ours.per_cpu_second and other.per_cpu_second:
            return ours.per_cpu_second / other.per_cpu_second
        return None

    for peer, want in (("channels-memory", 10.0), ("channels-redis", 10.0), ("raw-websockets", 0.6)):
        r = ratio(peer)
        if r is not None:
            out.append(
                f"- deliveries per server CPU-s >= {want}x {peer}: {r:.2f}x {'PASS' if r >= want else 'FAIL'}"
            )
        else:
            # A peer not run at this N (the in-memory layer past 5,000): compare with its largest N,
            # which flatters the peer, since its cost per delivery grows with N.
            smaller = sorted(m for t, m in s1 if t == peer and m < n)
            other = s1.get((peer, smaller[-1])) if smaller else None
            if ours and other and ours.per_cpu_second and other.per_cpu_second:
                r = ours.per_cpu_second / other.per_cpu_second
                out.append(
                    f"- deliveries per server CPU-s >= {want}x {peer} (its N={smaller[-1]:,}): {r:.2f}x "
                    f"{'PASS' if r >= want else 'FAIL'}"
                )
    if ours:
        out.append(
            f"- p99 <= 150 ms: {_f(ours.p99, '.1f')} ms {'PASS' if (ours.p99 or 1e9) <= 150 else 'FAIL'}"
        )
        out.append(f"- no message lost: {ours.lost} lost {'PASS' if ours.lost == 0 else 'FAIL'}")
    idle = [
        c for c in cells if c.scenario == "S2" and c.target == "project-uvicorn" and "deflate" not in c.label
    ]
    if idle and idle[0].rss_per_conn_kib is not None:
        kib = idle[0].rss_per_conn_kib
        out.append(
            f"- <= 25 KiB RSS per idle connection (no compression): {kib:.1f} KiB {'PASS' if kib <= 25 else 'FAIL'}"
        )
    return "\n".join(out)


def header(mode: str, seconds: float, command: str = "python -m bench") -> list[str]:
    return [
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, `{command}{' --smoke' if mode == 'smoke' else ''}`"
        f" ({seconds:.0f} s)  ",
        f"Machine: {machine()}  ",
        f"Versions: {versions()}",
        "",
    ]


def render(cells: list[Cell], *, mode: str, seconds: float, notes: list[str]) -> str:
    parts = [*header(mode, seconds), table(cells), ""]
    r = ratios(cells)
    if r:
        parts += [r, ""]
    g = goals(cells)
    if g:
        parts += [g, ""]
    for cell in cells:
        if cell.extra.get("profile"):
            parts += [
                f"Profile (py-spy, an extra loop of the same broadcasts) of {cell.label} at N={cell.n:,}:",
                "",
                cell.extra["profile"],
            ]
    parts += [f"- {note}" for note in notes]
    return "\n".join(parts).rstrip() + "\n"


def s5_table(cells: list[Cell]) -> str:
    from .targets import s5_ratio

    rows = [c for c in cells if c.scenario == "S5"]
    sockets = max((c.n for c in rows), default=0)
    head = (
        f"| S5 path ({sockets:,} sockets on {sockets:,} channels) | CPU of | Events | Events/s "
        "| CPU per event | vs its limit | Lost | p50 ms | p99 ms | Note |"
    )
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for c in rows:
        us = c.server_cpu / c.broadcasts * 1e6 if c.broadcasts and c.server_cpu > 0 else None
        measured = s5_ratio(cells, c.target)
        limit = c.extra.get("limit", "")
        against = f"{measured[0]:.2f}x {limit}" if measured else ("limit" if not limit else "–")
        counted = c.extra.get("counted")
        lines.append(
            f"| {c.label} | {c.extra.get('measured', '')} | {c.broadcasts:,} "
            f"| {_f(c.broadcasts / c.seconds if c.seconds else None)} | {_f(us)} µs | {against} "
            f"| {c.lost if counted else '–'} | {_f(c.p50, '.1f') if counted else '–'} "
            f"| {_f(c.p99, '.1f') if counted else '–'} | {c.note} |"
        )
    return "\n".join(lines)


def render_s5(
    cells: list[Cell], *, mode: str, seconds: float, notes: list[str], command: str = "python -m bench"
) -> str:
    """The S5 section: table, targets, profiles, notes (markdown, pasted or written as is)."""
    from .targets import s5_goals

    parts = [*header(mode, seconds, command), s5_table(cells), ""]
    goals = s5_goals(cells)
    if goals:
        parts += ["Targets (CPU per event, each against its limit in this run):", *goals, ""]
    for cell in cells:
        if cell.scenario == "S5" and cell.extra.get("profile"):
            parts += [
                f"Profile (py-spy `--gil`: the thread running Python) of {cell.extra['profile_of']}: {cell.label}",
                "",
                cell.extra["profile"],
            ]
    parts += [f"- {note}" for note in notes]
    return "\n".join(parts).rstrip() + "\n"


def s6_table(cells: list[Cell]) -> str:
    from .s6 import per_client_us

    head = (
        "| S6 phase | Server | N | Wall s | Server CPU s | CPU per client | RSS/conn KiB | Resubscribed "
        "| Broadcasts | Lost | Note |"
    )
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for c in cells:
        if c.scenario != "S6":
            continue
        us = per_client_us(c)
        storm = c.extra.get("phase") == "storm"
        lines.append(
            f"| {'reconnect storm + recovery' if storm else 'connect + subscribe'} | {c.label} | {c.n:,} "
            f"| {c.seconds:.2f} | {c.server_cpu:.2f} | {_f(us)} µs | {_f(c.rss_per_conn_kib, '.1f')} "
            f"| {format(c.extra.get('ok', 0), ',') + ' / ' + format(c.n, ',') if storm else '–'} "
            f"| {c.broadcasts if storm else '–'} | {c.lost if storm else '–'} | {c.note} |"
        )
    return "\n".join(lines)


def render_s6(
    cells: list[Cell], *, mode: str, seconds: float, notes: list[str], command: str = "python -m bench"
) -> str:
    """The S6 section: table, targets (both sides of each ratio), profile, notes."""
    from .targets import s6_goals

    parts = [*header(mode, seconds, command), s6_table(cells), ""]
    goals = s6_goals(cells)
    if goals:
        parts += ["Targets (this project against the raw `websockets` server, same run):", *goals, ""]
    for cell in cells:
        if cell.scenario == "S6" and cell.extra.get("profile"):
            parts += [f"Profile (py-spy) of {cell.extra['profile_of']}:", "", cell.extra["profile"]]
    parts += [f"- {note}" for note in notes]
    return "\n".join(parts).rstrip() + "\n"


def write(path: Path, body: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the text between the ``begin``/``end`` markers of ``path`` (append them if missing)."""
    text = path.read_text() if path.exists() else "# Performance\n\n"
    block = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
