"""docs/operations.md: its Python examples run, and it documents every subcommand, option and metric."""

from __future__ import annotations

from pathlib import Path

from django.core.management import load_command_class

from django_broadcasting.metrics import BROADCAST_DURATION, HubCollector
from tests.docs_blocks import python_blocks, run_blocks

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_python_examples_run():
    blocks = python_blocks(DOC)
    assert len(blocks) >= 2
    run_blocks(DOC, blocks=blocks, namespace={})


def _subparsers():
    command = load_command_class("django_broadcasting", "broadcast")
    parser = command.create_parser("manage.py", "broadcast")
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return action.choices


def test_every_subcommand_and_option_is_documented():
    text = DOC.read_text()
    for name, parser in _subparsers().items():
        assert f"### `{name}`" in text, f"no section for {name}"
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in text, f"{name} {option} is not documented"


def test_every_metric_is_documented():
    text = DOC.read_text()
    names = {family.name for family in HubCollector().collect()} | {BROADCAST_DURATION._name}
    for name in names:
        exposed = {"websocket_connections": "websocket_connections_total"}.get(name, name)
        if name.startswith(("broadcast_messages", "broadcast_app_messages")) or name in {
            "broadcast_frames_in",
            "broadcast_errors",
            "broadcast_webhook_events",
            "broadcast_webhook_requests",
        }:
            exposed = f"{name}_total"
        if name == "broadcast_node":
            exposed = "broadcast_node_info"
        assert f"`{exposed}`" in text, f"metric {exposed} is not documented"
