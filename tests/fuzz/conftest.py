"""Fuzz run figures: how many generated inputs each target sent, printed at the end of the run.

``FUZZ_EXAMPLES`` (default 300) scales the run; ``FUZZ_REPORT=path.json`` also writes the figures.
"""

from __future__ import annotations

import json
import os
import time

from .harness import CLOSES, COUNTS, STARTED, STATUSES


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest's hook
    if not COUNTS:
        return
    elapsed = time.monotonic() - STARTED
    total = sum(COUNTS.values())
    write = terminalreporter.write_line
    terminalreporter.section("fuzz figures")
    for target, count in sorted(COUNTS.items()):
        write(f"{target:34} {count:>8,} inputs")
    write(f"{'total':34} {total:>8,} inputs in {elapsed:,.0f} s ({total / max(elapsed, 1e-9):,.0f}/s)")
    write("HTTP statuses: " + ", ".join(f"{k} x{v}" for k, v in sorted(STATUSES.items())))
    write("server closes: " + (", ".join(f"{k} x{v}" for k, v in sorted(CLOSES.items())) or "none"))
    report = os.environ.get("FUZZ_REPORT")
    if report:
        with open(report, "w") as handle:
            json.dump({"counts": dict(COUNTS), "total": total, "seconds": round(elapsed, 1),
                       "statuses": dict(STATUSES), "closes": dict(CLOSES), "exit": int(exitstatus)},
                      handle, indent=2)  # fmt: skip
