"""The benchmark's smoke mode runs in CI so the harness cannot rot (behaviour only, never timing).

``python -m bench --smoke`` starts the real servers (this project on uvicorn, the raw websockets
peer, two servers + a private redis-server for S3), connects a few dozen clients from separate
load-generator processes, and writes its table. The checks are that every scenario produced its
row, that nothing was lost, and that the table lands between the markers of the output file
without touching the text around them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report

REPO = Path(__file__).resolve().parent.parent


def rows(text: str, scenario: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith(f"| {scenario} |")
    ]


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("bench") / "performance.md"
    out.write_text(
        "# Performance\n\nProse above the table.\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\nProse below.\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BROADCAST_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out.read_text()


def test_smoke_writes_the_table_between_the_markers(smoke_output: str) -> None:
    assert smoke_output.startswith("# Performance\n\nProse above the table.\n")
    assert smoke_output.rstrip().endswith("Prose below.")
    assert "\nold\n" not in smoke_output
    assert "| Scenario | Server | N |" in smoke_output
    assert re.search(r"Machine: \d+ CPU", smoke_output)
    assert "uvicorn " in smoke_output and "websockets " in smoke_output  # versions line


def test_s1_rows_for_the_project_and_the_raw_peer_lose_nothing(smoke_output: str) -> None:
    s1 = rows(smoke_output, "S1")
    servers = {row[1] for row in s1}
    assert "django-broadcasting on uvicorn" in servers
    assert "raw websockets.broadcast()" in servers
    for row in s1:
        assert row[3] == "3", row  # broadcasts
        assert row[9] == "0", row  # lost
        assert row[4] not in ("–", "0"), row  # deliveries/s (CPU time is too coarse at toy sizes)


def test_s2_measures_memory_with_and_without_compression(smoke_output: str) -> None:
    labels = [row[1] for row in rows(smoke_output, "S2")]
    assert any("deflate" in label for label in labels)
    assert any("deflate" not in label for label in labels)
    for row in rows(smoke_output, "S2"):
        assert row[10] != "–", row  # RSS per connection


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="S3 starts its own redis-server")
def test_s3_crosses_processes_through_redis(smoke_output: str) -> None:
    (row,) = rows(smoke_output, "S3")
    assert row[9] == "0", row
    assert float(row[12]) > 0, row  # Redis commands per broadcast


def test_s4_churn_with_presence_loses_nothing(smoke_output: str) -> None:
    (row,) = rows(smoke_output, "S4")
    assert row[9] == "0", row
    assert "connect+subscribe+disconnect/s" in row[14]


def test_write_appends_markers_when_missing(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n")
    report.write(page, "table\n")
    report.write(page, "table 2\n")
    text = page.read_text()
    assert (
        text.count(report.BEGIN) == 1 and "table 2" in text and "table\n" not in text.replace("table 2", "")
    )
