"""The layer table of docs/architecture.md, checked against the source with ``ast`` (nothing is imported).

Rules (``test_layers.py`` keeps the older, narrower ones: publishers never import server/ or http/):

1. Every module belongs to exactly one layer of ``LAYERS``; a new top-level module or package
   must be placed in the table (and in docs/architecture.md).
2. A module-level import never points to a higher layer.
3. Imports inside a function (or under ``if TYPE_CHECKING:``) may point up, to break an
   import-time cycle, except across these fences, which hold for every import:
   - ``core/`` imports nothing of the package;
   - nothing below ``server/`` and ``http/`` imports ``server/`` or ``http/``;
   - ``server/`` and ``http/`` never import each other; ``auth/`` never imports either;
     ``http/`` reaches the hub through ``core.serving``.
4. The package root (``django_broadcasting/__init__.py``) resolves its names lazily on
   access; ``from .. import signals`` names it without running anything, so it is not an arrow.
5. Module-level imports between modules form no cycle (``test_layers.py``), and no two
   top-level units import each other at module level.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .test_layers import PACKAGE, imports, module_name

ROOT = "django_broadcasting"

#: Lowest first. A unit is a top-level module (``conf``) or subpackage (``server``).
LAYERS: list[tuple[str, list[str]]] = [
    ("core", ["core"]),
    ("foundation", ["exceptions", "conf", "sync", "signals", "metrics"]),
    ("values", ["messages", "pusher_app_fields", "pusher_apps", "encryption", "discovery"]),
    (
        "identity and channels",
        [
            "auth",
            "authorization",
            "builtin_channels",
            "broadcast_channels",
            "pusher_signing",
            "context",
            "middleware",
        ],
    ),
    ("backends", ["backends", "drivers", "webhooks", "stats"]),
    ("publishing", ["publishing", "broadcasting", "compat", "events", "tasks", "model_events", "models"]),
    ("serving", ["server", "http"]),
    ("composition", ["asgi", "admin", "cli", "management", "templatetags", "testing", "apps", "checks"]),
]
RANK = {unit: rank for rank, (_, units) in enumerate(LAYERS) for unit in units}

#: Pairs of units that may never import each other, not even inside a function.
FENCES = [("server", "http"), ("http", "server"), ("auth", "server"), ("auth", "http")]


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> list[tuple[str, Path]]:
    return [(module_name(p), p) for p in sorted(PACKAGE.rglob("*.py"))]


def arrows(top_level_only: bool) -> list[tuple[str, str]]:
    out = []
    for name, path in modules():
        for target in imports(path, top_level_only=top_level_only):
            if target != ROOT:
                out.append((name, target))
    return out


def test_every_unit_has_a_layer():
    units = {unit(name) for name, _ in modules()} - {"__init__"}
    assert not units - set(RANK), f"put these in LAYERS and docs/architecture.md: {sorted(units - set(RANK))}"
    assert not set(RANK) - units, f"LAYERS names what does not exist: {sorted(set(RANK) - units)}"


def test_module_level_imports_never_point_up():
    bad = [
        f"{src} -> {dst}"
        for src, dst in arrows(top_level_only=True)
        if unit(src) != "__init__" and RANK[unit(dst)] > RANK[unit(src)]
    ]
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_core_imports_nothing_of_the_package():
    bad = [f"{src} -> {dst}" for src, dst in arrows(False) if unit(src) == "core" and unit(dst) != "core"]
    assert not bad, bad


def test_nothing_below_serving_imports_server_or_http():
    serving = RANK["server"]
    bad = [
        f"{src} -> {dst}"
        for src, dst in arrows(False)
        if unit(src) != "__init__" and RANK[unit(src)] < serving and unit(dst) in ("server", "http")
    ]
    assert not bad, "\n".join(sorted(bad))


@pytest.mark.parametrize("fence", FENCES, ids=lambda f: f"{f[0]}-never-imports-{f[1]}")
def test_fences(fence):
    src_unit, dst_unit = fence
    bad = [f"{s} -> {d}" for s, d in arrows(False) if unit(s) == src_unit and unit(d) == dst_unit]
    assert not bad, "\n".join(sorted(bad))


def test_units_import_each_other_one_way_at_module_level():
    pairs = {(unit(s), unit(d)) for s, d in arrows(True) if unit(s) != unit(d) and unit(s) != "__init__"}
    both = sorted({tuple(sorted(p)) for p in pairs if (p[1], p[0]) in pairs})
    assert not both, f"units importing each other at module level: {both}"


def test_the_table_is_the_one_in_the_docs():
    page = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for name, units in LAYERS:
        row = next((line for line in page.splitlines() if line.startswith(f"| {name} |")), None)
        assert row is not None, f"docs/architecture.md has no row for the layer {name!r}"
        assert set(re.findall(r"`([a-z_]+)/?`", row)) == set(units), row


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    # The rules can fail: a module-level import of the server from auth/ is caught.
    from . import test_layers

    package = tmp_path / ROOT
    (package / "auth").mkdir(parents=True)
    (package / "auth" / "probe.py").write_text("from ..server.hub import get_hub\n")
    (package / "server").mkdir()
    (package / "server" / "hub.py").write_text("")
    monkeypatch.setattr(test_layers, "PACKAGE", package)
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", package)
    with pytest.raises(AssertionError, match="auth.probe -> django_broadcasting.server.hub"):
        test_module_level_imports_never_point_up()
    with pytest.raises(AssertionError):
        test_fences(("auth", "server"))
