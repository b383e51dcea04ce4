"""docs/example.md: its runnable example runs, and the files and URLs it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.docs_blocks import run_blocks

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "example.md"


@pytest.mark.django_db(transaction=True)
def test_python_example_runs(monkeypatch, capsys):
    run_blocks(PAGE, monkeypatch)
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
