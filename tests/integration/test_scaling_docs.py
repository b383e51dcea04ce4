"""The runnable examples of docs/scaling.md, against a real Redis."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_scaling_examples_run(redis_url, redis_prefix, settings, monkeypatch, capsys):
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "redis",
        "REDIS_URL": redis_url,
        "CHANNELS_PREFIX": redis_prefix,
    }
    blocks = BLOCK.findall((DOCS / "scaling.md").read_text())
    assert len(blocks) >= 2
    module = types.ModuleType("docs_scaling")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"scaling.md example {number}", "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    out = capsys.readouterr().out
    assert re.search(r"\['[0-9a-f]+:1', '[0-9a-f]+:1'\]", out), out
    assert "redis 0 0" in out


def test_protocol_page_documents_recovery():
    text = (DOCS / "protocol.md").read_text()
    assert "## Recovering missed messages" in text and "recovery_failed" in text and "4290" in text
