"""Queued broadcasts on either tasks framework: ``django.tasks`` (Django 6) and the ``django-tasks`` backport.

A task object belongs to one framework and only that framework's backends accept it. On Django 6
both can be configured (a project moving off the backport keeps ``django_tasks.backends...`` paths
for a while), so the broadcast task is built by the framework of the backend it is queued on.
The Django 6 cases run in the matrix's second line (``make pytest-dj6``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass

import django
import pytest

from django_broadcasting.drivers import memory
from django_broadcasting.events import Event, ShouldBroadcast
from tests.servers import REPO_ROOT, free_port, server_env

BACKPORT_IMMEDIATE = "django_tasks.backends.immediate.ImmediateBackend"
BACKPORT_DUMMY = "django_tasks.backends.dummy.DummyBackend"
CORE_IMMEDIATE = "django.tasks.backends.immediate.ImmediateBackend"
CORE_DUMMY = "django.tasks.backends.dummy.DummyBackend"
DJANGO_6 = django.VERSION >= (6, 0)
needs_django_6 = pytest.mark.skipif(not DJANGO_6, reason="django.tasks exists from Django 6.0")

IMMEDIATE_BACKENDS = [BACKPORT_IMMEDIATE, pytest.param(CORE_IMMEDIATE, marks=needs_django_6)]


@dataclass
class Shipped(Event, ShouldBroadcast):
    order_id: int

    def broadcast_on(self):
        return [f"orders.{self.order_id}"]


def task_class(framework):
    """The framework's ``Task`` class (the backport does not export it at top level)."""
    from importlib import import_module

    return import_module(f"{framework.__name__}.base").Task


@pytest.fixture(autouse=True)
def memory_driver(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    memory.reset_outbox()
    yield memory.outbox


# -- BroadcastFake and worker backends -------------------------------------------------------------
# -- a server that cannot be reached: one line, no traceback ---------------------------------------


def test_readme_dispatch_with_no_server_prints_no_traceback(tmp_path):
    """The README's queued event in a script, nothing listening: one-line errors, no traceback."""
    script = tmp_path / "dispatch.py"
    script.write_text(
        textwrap.dedent("""
        import django

        django.setup()
        from django_broadcasting import Event, ShouldBroadcast


        class OrderShipped(ShouldBroadcast, Event):
            def __init__(self, order_id, user_id):
                self.order_id = order_id
                self.user_id = user_id

            def broadcast_on(self):
                return [f"user.{self.user_id}"]


        OrderShipped(order_id=42, user_id=7).dispatch()
        print("dispatched")
        """)
    )
    env = server_env({"BROADCAST_WEBSOCKET_PORT": str(free_port())})
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60
    )
    assert result.returncode == 0 and "dispatched" in result.stdout, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "Cannot reach the broadcast server" in result.stderr, result.stderr
