"""The one helper that finds and runs the Python code blocks of docs/*.md (docs are run as tests).

``python_blocks(page)`` returns the bodies of the page's ```` ```python ```` blocks (``tag`` picks
blocks opened as ```` ```python <tag> ````); ``run_blocks(page, monkeypatch)`` runs them in order in
one module namespace, registered in ``sys.modules`` for the test's duration (dataclasses and
pickling look their module up), each compiled under the name "<page> example <n>" so a traceback
says which block failed.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs"


def page_path(page: str | Path) -> Path:
    path = Path(page)
    return path if path.is_absolute() else DOCS / path


def python_blocks(
    page: str | Path, tag: str = "", *, lang: str = "python", text: str | None = None
) -> list[str]:
    """The Python blocks of ``page`` (a name under docs/ or a path; ``text``: a part of it), in order.

    ``lang="py"`` picks the fragments (```` ```py ````) that pages keep out of their runnable set.
    """
    opener = re.escape(lang) + (f" {re.escape(tag)}" if tag else "")
    source = page_path(page).read_text() if text is None else text
    return re.findall(rf"^```{opener}\n(.*?)^```", source, re.S | re.M)


def run_block(block: str, where: str, namespace: dict[str, Any]) -> None:
    exec(compile(block, where, "exec", dont_inherit=True), namespace)  # noqa: S102 - our own documentation


def run_blocks(
    page: str | Path,
    monkeypatch: Any = None,
    *,
    blocks: list[str] | None = None,
    namespace: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``blocks`` (default: every Python block of ``page``) in one namespace; return it."""
    name = page_path(page).name
    if blocks is None:
        blocks = python_blocks(page)
    assert blocks, f"{name} has no runnable example"
    if namespace is None:
        module = types.ModuleType(f"docs_{name.removesuffix('.md').replace('-', '_')}")
        if monkeypatch is not None:
            monkeypatch.setitem(sys.modules, module.__name__, module)
        namespace = module.__dict__
    for number, block in enumerate(blocks, 1):
        run_block(block, f"{name} example {number}", namespace)
    return namespace
