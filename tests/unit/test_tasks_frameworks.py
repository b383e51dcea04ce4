"""Queued broadcasts on either tasks framework: ``django.tasks`` (Django 6) and the ``django-tasks`` backport.

A task object belongs to one framework and only that framework's backends accept it. On Django 6
both can be configured (a project moving off the backport keeps ``django_tasks.backends...`` paths
for a while), so the broadcast task is built by the framework of the backend it is queued on.
The Django 6 cases run in the matrix's second line (``make pytest-dj6``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import django
import pytest
from django.utils.module_loading import import_string

from django_broadcasting import tasks
from django_broadcasting.drivers import memory
from django_broadcasting.events import Event, ShouldBroadcast
from django_broadcasting.testing import BroadcastFake

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


def test_django_6_line_runs_on_django_6():
    """The matrix's second line really is Django 6 (the venv could silently hold 5.2)."""
    if os.environ.get("DJANGO_BROADCASTING_EXPECT_DJANGO"):
        assert django.get_version().startswith(os.environ["DJANGO_BROADCASTING_EXPECT_DJANGO"])


@pytest.mark.parametrize("backend", IMMEDIATE_BACKENDS)
def test_queued_broadcast_on_the_immediate_backend_of_each_framework(settings, backend):
    settings.TASKS = {"default": {"BACKEND": backend}}
    framework = tasks.framework_for("default")
    assert framework.__name__ == backend.rsplit(".backends.", 1)[0]

    finished = []

    def on_finished(sender, task_result, **kwargs):
        finished.append(task_result)

    framework.signals.task_finished.connect(on_finished)
    try:
        Shipped(9).dispatch()
    finally:
        framework.signals.task_finished.disconnect(on_finished)
    assert [m.channel for m in memory.outbox] == ["orders.9"]
    assert len(finished) == 1 and finished[0].status == "SUCCESSFUL"
    assert isinstance(finished[0].task, task_class(framework))


@needs_django_6
def test_backport_default_with_a_django_backend_for_broadcasts(settings):
    """The issue's setup: the backport's immediate backend as default, Django's for one alias."""
    settings.TASKS = {
        "default": {"BACKEND": BACKPORT_IMMEDIATE},
        "broadcasts": {"BACKEND": CORE_IMMEDIATE, "QUEUES": ["broadcasts"]},
    }

    class ViaBroadcasts(Shipped):
        broadcast_connection = "broadcasts"
        broadcast_queue = "broadcasts"

    Shipped(1).dispatch()
    ViaBroadcasts(2).dispatch()
    assert [m.channel for m in memory.outbox] == ["orders.1", "orders.2"]
    import django.tasks
    import django_tasks

    assert isinstance(tasks.task_for_backend("broadcasts", "broadcasts"), task_class(django.tasks))
    assert isinstance(tasks.task_for_backend("default"), task_class(django_tasks))


@pytest.mark.parametrize("backend", [BACKPORT_DUMMY, pytest.param(CORE_DUMMY, marks=needs_django_6)])
def test_a_worker_finds_the_task_by_its_dotted_path_and_runs_it(settings, backend):
    """A worker backend stores ``module_path`` and later imports it: that path must give back the task."""
    settings.TASKS = {"default": {"BACKEND": backend}}
    enqueued = []

    def on_enqueued(sender, task_result, **kwargs):
        enqueued.append(task_result)

    signals = tasks.framework_for().signals
    signals.task_enqueued.connect(on_enqueued)
    try:
        Shipped(4).dispatch()
    finally:
        signals.task_enqueued.disconnect(on_enqueued)
    assert len(enqueued) == 1
    result = enqueued[0]
    assert memory.outbox == []  # queued, not run
    path = result.task.module_path
    assert path == "django_broadcasting.tasks.broadcast_messages"
    task = import_string(path)
    assert isinstance(task, task_class(tasks.framework_for()))
    assert task.call(*result.args, **result.kwargs) == 1  # what the worker does
    assert [m.channel for m in memory.outbox] == ["orders.4"]


def test_unknown_backend_alias_is_a_configuration_error(settings):
    from django_broadcasting.exceptions import BroadcastingImproperlyConfigured

    settings.TASKS = {"default": {"BACKEND": BACKPORT_IMMEDIATE}}
    with pytest.raises(BroadcastingImproperlyConfigured, match="nowhere"):
        tasks.broadcast_task_for(None, "nowhere")


# -- BroadcastFake and worker backends -------------------------------------------------------------
@pytest.mark.parametrize("backend", [BACKPORT_DUMMY, pytest.param(CORE_DUMMY, marks=needs_django_6)])
def test_broadcast_fake_records_a_broadcast_queued_for_a_worker(settings, backend):
    settings.TASKS = {"default": {"BACKEND": backend}}
    with BroadcastFake() as fake:
        Shipped(7).dispatch()
    fake.assert_broadcast_on("orders.7", event="Shipped", count=1)
    assert [(b, q, m.channel) for b, q, m in fake.queued] == [("default", "default", "orders.7")]
    with pytest.raises(AssertionError, match=r"queued on task backend 'default', queue 'default'"):
        fake.assert_broadcast_on("orders.8")
    assert tasks.queue_interceptors == []  # stop() unhooks it


# -- a server that cannot be reached: one line, no traceback ---------------------------------------


def test_transport_failure_in_a_queued_broadcast_is_logged_on_one_line(settings, caplog):
    settings.BROADCASTING = {
        "DEFAULT_DRIVER": "down",
        "DRIVERS": {"down": {"BACKEND": "tests.unit.test_events.FlakyDriver"}},
    }
    from tests.unit.test_events import FlakyDriver

    FlakyDriver.failures = 5
    FlakyDriver.calls = []
    with caplog.at_level(logging.INFO):
        Shipped(1).dispatch()  # a queued job: the failure does not raise here
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert failures, caplog.text
    assert all(r.exc_info is None for r in failures), [r.name for r in failures if r.exc_info]
    ours = [r for r in failures if r.name == "django_broadcasting.tasks"]
    assert len(ours) == 1 and "down" in ours[0].getMessage()
