"""Per-app figures of several nodes' reports, added up."""

from __future__ import annotations

from typing import Any

__all__ = ["merge_app_stats"]


def merge_app_stats(nodes: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Add up the ``apps`` figures of several nodes' reports."""
    merged: dict[str, dict[str, int]] = {}
    for node in nodes:
        for app_id, figures in (node.get("apps") or {}).items():
            into = merged.setdefault(str(app_id), {})
            for name, value in figures.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    into[name] = into.get(name, 0) + value
    return merged
