"""The test fakes shipped to users: EventFake / EventFacade, BroadcastFake, and the pytest plugin fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from django_broadcasting.events import Event, ShouldBroadcastNow

ROOT = Path(__file__).resolve().parents[2]


class UserRegistered(Event):
    def __init__(self, user_id):
        self.user_id = user_id


class OrderShipped(ShouldBroadcastNow):
    def __init__(self, order_id):
        self.order_id = order_id

    def broadcast_on(self):
        return f"orders.{self.order_id}"


@pytest.fixture(autouse=True)
def memory_default(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}


def _user_suite(tmp_path, conftest: str | None) -> subprocess.CompletedProcess:
    """Run ``pytest --fixtures`` and one test in a user's project dir (not this repository)."""
    if conftest is not None:
        (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "test_user_project.py").write_text(
        textwrap.dedent("""
        def test_no_fixture_of_ours_is_forced_on_the_test(request):
            ours = {"broadcast_fake", "event_fake", "broadcasting_isolation"}
            assert not ours & set(request.fixturenames), request.fixturenames
        """)
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--fixtures", "-rA", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_testing_module_imports_without_settings(tmp_path):
    code = (
        "import django_broadcasting.testing as t; import sys; "
        "assert 'django.db' not in sys.modules, 'testing imported the ORM'; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_installing_the_package_adds_nothing_to_a_users_test_suite(tmp_path):
    result = _user_suite(tmp_path, conftest=None)
    assert "broadcast_fake" not in result.stdout and "broadcasting_isolation" not in result.stdout, (
        result.stdout
    )


def test_the_plugin_is_opt_in_through_pytest_plugins_and_adds_no_autouse_fixture(tmp_path):
    result = _user_suite(tmp_path, conftest='pytest_plugins = ["django_broadcasting.testing"]\n')
    for name in ("broadcast_fake", "event_fake", "broadcasting_isolation"):
        assert name in result.stdout, result.stdout + result.stderr
    # --fixtures lists, it does not run: run the test itself too.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
