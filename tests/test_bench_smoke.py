"""The benchmark's smoke mode runs in CI so the harness cannot rot (behaviour only, never timing).

``python -m bench --smoke`` starts the real servers (this project on uvicorn, the raw websockets
peer, two servers + a private redis-server for S3; for S5 a bare ASGI app, the project with the
redis driver, plain Channels over channels-redis and their publisher processes), connects a few
dozen clients from separate load-generator processes, and writes its tables. The checks are that
every scenario produced its rows, that nothing was lost, and that each table lands between its
markers of the output file without touching the text around them.
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


def s5_rows(text: str) -> dict[str, list[str]]:
    """The S5 table's rows by path label (between the S5 markers)."""
    block = text.split(report.S5_BEGIN, 1)[1].split(report.S5_END, 1)[0]
    out = {}
    for line in block.splitlines():
        if line.startswith("| ") and not line.startswith("| S5 path"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            out[cells[0]] = cells
    return out


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
        "# Performance\n\nProse above the table.\n\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\n"
        "Prose between.\n\n<!-- bench:s5:begin -->\nold S5\n<!-- bench:s5:end -->\n\n"
        "<!-- bench:s6:begin -->\nold S6\n<!-- bench:s6:end -->\n\n"
        "<!-- bench:s3c:begin -->\nold S3c\n<!-- bench:s3c:end -->\n\nProse below.\n"
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
    assert "\nold\n" not in smoke_output and "\nold S5\n" not in smoke_output
    assert "\nold S6\n" not in smoke_output
    main, rest = smoke_output.split(report.END, 1)
    assert "| S5 path" not in main  # S5 has its own table, in its own block
    assert rest.index("Prose between.") < rest.index(report.S5_BEGIN) < rest.index("| S5 path")
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


@pytest.mark.skipif(
    shutil.which("redis-server") is None or shutil.which("redis-cli") is None,
    reason="S3C starts its own Redis Cluster",
)
def test_s3c_one_spublish_per_broadcast_on_a_cluster(smoke_output: str) -> None:
    block = smoke_output.split("<!-- bench:s3c:begin -->", 1)[1].split("<!-- bench:s3c:end -->", 1)[0]
    assert "\nold S3c\n" not in smoke_output
    cells = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in block.splitlines()
        if line.startswith("| ") and not line.startswith("| servers")
    ]
    assert len(cells) == 4, block  # 1 and 2 servers x 1 and 3 channels
    for row in cells:
        assert row[6] == "1.00", row  # SPUBLISH per broadcast
        assert row[10] == "0", row  # lost
        assert row[8] == row[0], row  # shard subscribers of a channel = server processes
    assert "Publisher cost" in block


def test_s4_churn_with_presence_loses_nothing(smoke_output: str) -> None:
    (row,) = rows(smoke_output, "S4")
    assert row[9] == "0", row
    assert "connect+subscribe+disconnect/s" in row[14]


def test_s5_http_api_single_and_batched_against_the_bare_asgi_app(smoke_output: str) -> None:
    s5 = s5_rows(smoke_output)
    bare = next(row for label, row in s5.items() if label.startswith("limit: bare ASGI app"))
    single = next(row for label, row in s5.items() if "/events`, 1 event per request" in label)
    batch = next(row for label, row in s5.items() if "/batch_events`, 10 events per request" in label)
    assert bare[5] == "limit" and bare[6] == "–", bare  # no sockets: nothing to count
    for row in (single, batch):
        assert row[1] == "server", row
        assert int(row[2].replace(",", "")) > 0, row  # events accepted (HTTP 200)
        assert row[6] == "0", row  # lost: every event reached its socket
        assert row[5] == "–" or row[5].endswith("x bare-asgi"), row  # "–": CPU time too coarse
        assert "failed" not in row[9], row
    assert int(batch[2].replace(",", "")) % 10 == 0, batch


@pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="S5's Redis paths start their own redis-server"
)
def test_s5_redis_publisher_receiving_server_and_channels_peer_lose_nothing(smoke_output: str) -> None:
    s5 = s5_rows(smoke_output)

    def row(start: str) -> list[str]:
        return next(cells for label, cells in s5.items() if label.startswith(start))

    assert row("limit: bare redis-py `PUBLISH`")[5] == "limit"
    publisher = row("redis driver, sync `broadcast_to_channel()`")
    receiving = row("redis driver, receiving server")
    peer = row("peer: plain Channels `async_to_sync(layer.group_send)`")
    peer_server = row("peer: plain Channels receiving server")
    assert (publisher[1], receiving[1], peer[1], peer_server[1]) == (
        "publisher",
        "server",
        "publisher",
        "server",
    )
    for cells in (publisher, receiving, peer, peer_server):
        assert int(cells[2].replace(",", "")) > 0, cells
        assert cells[6] == "0", cells
    # The ratio, or "–" where a toy run used less CPU than the clock's resolution.
    assert publisher[5] == "–" or publisher[5].endswith("x bare-publish"), publisher
    assert receiving[5] == "–" or receiving[5].endswith("x bare-asgi"), receiving


def test_s5_targets_show_both_sides(smoke_output: str) -> None:
    block = smoke_output.split(report.S5_BEGIN, 1)[1].split(report.S5_END, 1)[0]
    targets = [line for line in block.splitlines() if line.startswith("- ") and " <= " in line]
    assert len(targets) == 4, targets
    for line in targets:
        # A verdict with both sides, whatever it is (no timing asserted), or "not measured" where a
        # toy run used less CPU than the clock's resolution (or there is no redis-server).
        assert re.search(r"µs vs [\d,]+ µs = [\d.]+x (PASS|FAIL)$", line) or line.endswith("not measured"), (
            line
        )
    assert re.search(r"every event delivered: [\d,]+ events, 0 lost, 0 requests failed PASS", block)


def s6_rows(text: str) -> list[list[str]]:
    block = text.split(report.S6_BEGIN, 1)[1].split(report.S6_END, 1)[0]
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in block.splitlines()
        if line.startswith("| ") and not line.startswith("| S6 phase")
    ]


def test_s6_connect_against_raw_and_the_reconnect_storm_recovers_everything(smoke_output: str) -> None:
    rows = s6_rows(smoke_output)
    connects = [row for row in rows if row[0] == "connect + subscribe"]
    servers = {row[1] for row in connects}
    assert "raw websockets.broadcast()" in servers and "django-broadcasting on uvicorn" in servers, servers
    for row in connects:
        assert row[6] != "–", row  # RSS per connection measured
        assert "failed" not in row[10], row
    block = smoke_output.split(report.S6_BEGIN, 1)[1].split(report.S6_END, 1)[0]
    for line in (line for line in block.splitlines() if line.startswith("- handshake + subscribe")):
        # Both sides, whatever the verdict (no timing asserted), or "not measured" at toy sizes.
        assert re.search(r"µs vs [\d,]+ µs = [\d.]+x (PASS|FAIL)", line) or line.endswith("not measured"), (
            line
        )
    if shutil.which("redis-server") is None:
        return
    (storm,) = [row for row in rows if row[0] == "reconnect storm + recovery"]
    n = storm[2]
    assert storm[7] == f"{n} / {n}", storm  # every client resubscribed and got "recovered"
    assert int(storm[8]) > 0 and storm[9] == "0", storm  # broadcasts while down and during; none lost
    assert re.search(r"reconnect storm: [\d,]+ of [\d,]+ resubscribed with recovery, .* 0 lost PASS", block)


def test_write_appends_markers_when_missing(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n")
    report.write(page, "table\n")
    report.write(page, "table 2\n")
    text = page.read_text()
    assert (
        text.count(report.BEGIN) == 1 and "table 2" in text and "table\n" not in text.replace("table 2", "")
    )
