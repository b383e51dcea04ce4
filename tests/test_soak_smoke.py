"""The soak harness in miniature (``make soak`` is the full run): behaviour only, never timing.

``python -m bench.soak`` starts the example site on uvicorn, holds a few dozen sockets of both
protocols (stable subscribers on public, presence and private channels; churners joining,
whispering and leaving) while broadcasts flow through the signed trigger, then lets everyone go.
The checks: every broadcast reached every stable subscriber, the server's connections, channels,
presence members, history and asyncio tasks are back to their values before the first client, and
the server logged no traceback. The Redis variant runs the same against a private redis-server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_soak(tmp_path: Path, backend: str) -> dict:
    out = tmp_path / "soak.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROADCAST_", "DJANGO_", "JWT_"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--duration",
            "0.25",
            "--sockets",
            "60",
            "--hold",
            "1,4",
            "--rate",
            "10",
            "--backend",
            backend,
            "--json",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert result.returncode == 0, (figures["problems"], result.stdout[-3000:], result.stderr[-3000:])
    return figures


def check(figures: dict) -> None:
    assert figures["sent"] > 0 and figures["publish_failed"] == 0
    assert figures["expected"] > 0 and figures["lost"] == 0, figures
    counts = figures["counts"]
    assert counts["connects"] > 0 and counts["whispers"] > 0, counts
    assert counts["failures"] == 0, counts
    assert figures["peak"]["connections"] > 0 and figures["peak"]["presence members"] > 0
    assert figures["after"] == figures["baseline"], figures
    assert figures["baseline"]["asyncio tasks"] > 0  # the figure is there, not a default
    assert figures["tracebacks"] == 0


def test_soak_memory_backend_loses_nothing_and_comes_back_to_baseline(tmp_path: Path) -> None:
    figures = run_soak(tmp_path, "memory")
    check(figures)
    assert figures["peak"]["history channels"] > 0  # broadcasts were kept, then expired


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="starts its own redis-server")
def test_soak_redis_backend_loses_nothing_and_comes_back_to_baseline(tmp_path: Path) -> None:
    check(run_soak(tmp_path, "redis"))
