"""Every old import path listed in docs/architecture.md ("Compatibility paths") still imports."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def old_paths() -> list[str]:
    section = PAGE.read_text().split("## Compatibility paths", 1)[1]
    paths = []
    for line in section.splitlines():
        if line.startswith("| `django_broadcasting."):
            paths += re.findall(r"`(django_broadcasting\.[\w.]+)`", line.split("|")[1])
    return paths


def resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("dotted", old_paths())
def test_old_path_imports(dotted):
    assert resolve(dotted) is not None


def test_the_list_is_not_empty():
    assert len(old_paths()) >= 10


def test_old_module_names_are_the_new_objects():
    import django_broadcasting
    from django_broadcasting import broadcasting, compat, publishing
    from django_broadcasting.core import codes
    from django_broadcasting.server import codes as old_codes
    from django_broadcasting.server.consumers import BroadcastConsumer
    from django_broadcasting.server.protocols.native.consumer import BroadcastConsumer as moved

    assert broadcasting is publishing
    assert django_broadcasting.BroadcastFacade is compat.BroadcastFacade is publishing.BroadcastFacade
    assert old_codes.ERR_4029_TOO_MANY_SUBSCRIPTIONS == codes.ERR_4029_TOO_MANY_SUBSCRIPTIONS
    assert BroadcastConsumer is moved
    pending = publishing.broadcast().channel("x")
    assert pending.data({"a": 1}) is pending and pending.with_(b=2) is pending
