"""The examples in the foundation docs run, and configuration.md covers every setting and check id.

Every ```python block of a page is executed, in order, in one namespace per page. Fragments that cannot
run alone (settings snippets, views) are fenced ```py instead, which renders the same.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from django_broadcasting.conf import OPTIONS
from django_broadcasting.signals import event_dispatched
from tests.docs_blocks import run_blocks

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = [
    "configuration.md",
    "events.md",
    "helpers.md",
    "drivers.md",
    "backends.md",
    "testing.md",
    "authentication.md",
    "webhooks.md",
    "encrypted-channels.md",
    "cache-channels.md",
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("page", PAGES)
def test_python_examples_run(page, settings, monkeypatch):
    settings.BROADCASTING = {}
    receivers = list(event_dispatched.receivers)
    try:
        run_blocks(DOCS / page, monkeypatch)
    finally:
        # Listeners the examples registered must not outlive the test.
        with event_dispatched.lock:
            event_dispatched.receivers = receivers
            event_dispatched.sender_receivers_cache.clear()


def test_configuration_documents_every_setting_and_variable():
    text = (DOCS / "configuration.md").read_text()
    missing = [name for name in OPTIONS if f"| `{name}` |" not in text]
    missing += [option.env for option in OPTIONS.values() if option.env and f"`{option.env}`" not in text]
    assert not missing, f"docs/configuration.md does not document: {', '.join(missing)}"


def test_configuration_documents_every_check_id():
    import django_broadcasting.checks as checks

    source = Path(checks.__file__).read_text()
    ids = set(re.findall(r"django_broadcasting\.[EW]\d{3}", source))
    text = (DOCS / "configuration.md").read_text()
    assert ids and all(f"`{check_id}`" in text for check_id in ids), ids
