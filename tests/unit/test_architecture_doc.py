"""docs/architecture.md matches the tree: every module path and dotted name it gives exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"


def defined_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def module_file(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def test_every_file_path_exists():
    paths = set(re.findall(r"django_broadcasting/[\w/]+\.py", PAGE.read_text()))
    assert paths, "the page names no module"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_dotted_name_exists():
    names = set(re.findall(r"`(django_broadcasting(?:\.\w+)+)`", PAGE.read_text()))
    assert names
    missing = []
    for name in sorted(names):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            path = module_file(".".join(parts[:cut]))
            if path is not None:
                rest = parts[cut:]
                lazy = rest and "__getattr__" in defined_names(path) and f'"{rest[0]}"' in path.read_text()
                if len(rest) > 1 or (rest and rest[0] not in defined_names(path) and not lazy):
                    missing.append(name)
                break
        else:
            missing.append(name)
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"


def test_every_unit_in_the_picture_exists():
    block = PAGE.read_text().split("## Layers", 1)[1].split("```")[1]
    for word in re.findall(r"(?<![\w/])([a-z_]+(?:/[a-z_]+)*(?:\.py|/))", block):
        assert (ROOT / "django_broadcasting" / word.rstrip("/")).exists(), word
