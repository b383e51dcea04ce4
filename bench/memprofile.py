"""Where an idle connection's memory goes: ``python -m bench.memprofile [N]``.

Runs this project on uvicorn under tracemalloc (``bench/traced_server.py``), opens N idle
subscribed connections from a load generator, and prints the growth per connection by source
file (allocations made while connecting that are still alive), next to the RSS growth.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from . import procs
    from .procs import LoadGen, rss_bytes
    from .s1 import connect
    from .targets import Project

    out = str(Path(tempfile.mkdtemp(prefix="bench-trace-")) / "snap")
    target = Project("uvicorn")
    proc = procs.project_server("uvicorn", env={"BENCH_TRACE_OUT": out})
    port = proc.port
    proc.argv = [sys.executable, "-m", "bench.traced_server", str(port)]
    target.proc = proc
    loadgen = LoadGen(1)
    proc.start()

    def snapshot(index: int) -> tracemalloc.Snapshot:
        os.kill(proc.pid, signal.SIGUSR1)
        path = Path(f"{out}.{index}")
        deadline = time.monotonic() + 120
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("no tracemalloc snapshot")
            time.sleep(0.1)
        return tracemalloc.Snapshot.load(str(path))

    try:
        connect(loadgen, [target.url("idle") for _ in range(20)], target.marker)
        loadgen.call_all(("close",))
        time.sleep(1.0)
        rss0 = rss_bytes(proc.pid)
        before = snapshot(1)
        ok, _, _ = connect(loadgen, [target.url("idle") for _ in range(n)], target.marker)
        time.sleep(2.0)
        rss1 = rss_bytes(proc.pid)
        after = snapshot(2)
        stats = after.compare_to(before, "filename")
        traced = sum(s.size_diff for s in stats)
        print(
            f"{ok} idle connections: RSS +{(rss1 - rss0) / ok / 1024:.1f} KiB/conn, "
            f"live Python allocations +{traced / ok / 1024:.1f} KiB/conn (tracemalloc itself adds to RSS)"
        )
        print("| Allocated in | bytes/conn | blocks/conn |")
        print("|---|---|---|")
        for stat in stats[:15]:
            name = stat.traceback[0].filename
            name = name.split("site-packages/")[-1].split("/work/main/")[-1]
            print(f"| `{name}` | {stat.size_diff / ok:.0f} | {stat.count_diff / ok:.1f} |")
    finally:
        loadgen.call_all(("close",))
        loadgen.stop()
        proc.stop()


if __name__ == "__main__":
    main()
