"""The runnable examples of docs/scaling.md, against a real Redis."""

from __future__ import annotations

import re
from pathlib import Path

from tests.docs_blocks import python_blocks, run_blocks

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_scaling_examples_run(redis_url, redis_prefix, settings, monkeypatch, capsys):
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "redis",
        "REDIS_URL": redis_url,
        "CHANNELS_PREFIX": redis_prefix,
    }
    blocks = python_blocks("scaling.md")
    assert len(blocks) >= 2
    run_blocks("scaling.md", monkeypatch, blocks=blocks)
    out = capsys.readouterr().out
    assert re.search(r"\['[0-9a-f]+:1', '[0-9a-f]+:1'\]", out), out
    assert "redis 0 0" in out


def test_protocol_page_documents_recovery():
    text = (DOCS / "protocol.md").read_text()
    assert "## Recovering missed messages" in text and "recovery_failed" in text and "4290" in text
