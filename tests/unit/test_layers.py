"""The import rules of the package, read from the source with ``ast`` (nothing is imported).

- Publishers and backends (``backends/``, ``drivers/``, the publishing modules) import neither
  ``server/`` nor ``http/``, not even inside a function: a publisher must work in a process
  that serves nothing.
- ``server/`` never imports ``http/``.
- Module-level imports form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "django_broadcasting"

PUBLISHERS = [
    "backends",
    "drivers",
    "broadcasting.py",
    "publishing.py",
    "compat.py",
    "events.py",
    "tasks.py",
    "messages.py",
    "conf.py",
    "discovery.py",
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute names of the django_broadcasting modules ``path`` imports."""
    tree = ast.parse(path.read_text())
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if top_level_only and isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports never run
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("django_broadcasting"):
                found.add(target)
                for alias in node.names:  # `from . import hub` imports the module hub
                    found.add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("django_broadcasting"))
    return found


def files(*places: str) -> list[Path]:
    out: list[Path] = []
    for place in places:
        path = PACKAGE / place
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def real_modules() -> set[str]:
    return {module_name(p) for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("path", files(*PUBLISHERS), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_publishers_and_backends_import_neither_server_nor_http(path):
    bad = {
        name
        for name in imports(path)
        if name.startswith(("django_broadcasting.server", "django_broadcasting.http"))
    }
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", files("server"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_server_never_imports_http(path):
    bad = {name for name in imports(path) if name.startswith("django_broadcasting.http")}
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def test_module_level_imports_have_no_cycle():
    known = real_modules()
    graph = {
        module_name(p): {n for n in imports(p, top_level_only=True) if n in known} - {module_name(p)}
        for p in PACKAGE.rglob("*.py")
    }
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_checker_sees_a_forbidden_import(tmp_path, monkeypatch):
    # The rules above can fail: a backend module that imports the hub lazily is caught.
    package = tmp_path / "django_broadcasting"
    probe = package / "backends" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from ..server.hub import get_hub\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", package)
    assert "django_broadcasting.server.hub" in imports(probe)
    assert imports(probe, top_level_only=True) == set()
