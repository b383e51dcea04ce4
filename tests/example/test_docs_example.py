"""docs/example.md: its runnable example runs, and the files and URLs it names exist."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
from django.urls import reverse

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "example.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.django_db(transaction=True)
def test_python_example_runs(monkeypatch, capsys):
    blocks = BLOCK.findall(PAGE.read_text())
    assert blocks, "docs/example.md has no runnable example"
    module = types.ModuleType("docs_example")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"example.md example {number}", "exec", dont_inherit=True), module.__dict__)  # noqa: S102
    assert capsys.readouterr().out.strip().endswith("hello")


def test_named_files_exist():
    text = PAGE.read_text()
    for name in re.findall(r"`((?:chat|demo)/[\w/.]+\.(?:py|html|js))`", text):
        assert (REPO / "example_project" / name).is_file(), name
    for name in re.findall(r"`test_(\w+)\.py`", text):
        assert (REPO / "tests" / "e2e" / f"test_{name}.py").is_file(), name


def test_named_urls_resolve():
    assert reverse("django_broadcasting:token") == "/broadcasting/token"
    assert reverse("home") == "/"
    assert reverse("signup") == "/accounts/signup/"
    assert reverse("notifications") == "/notifications/"
    assert reverse("dashboard") == "/dashboard/"
    assert reverse("chat:rooms") == "/chat/"
