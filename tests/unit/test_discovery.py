"""Where a publisher finds this project's local server: daphne's runserver is recorded as it starts."""

from __future__ import annotations

import tempfile

import pytest

from django_broadcasting.discovery import discovered_server, record_runserver


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path, monkeypatch):
    # The record lives in the temporary directory: this test's own, never a developer's running server's.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["manage.py", "runserver"], ("127.0.0.1", 8000)),
        (["manage.py", "runserver", "9002"], ("127.0.0.1", 9002)),
        (["/srv/site/manage.py", "runserver", "0.0.0.0:9001", "--noreload"], ("127.0.0.1", 9001)),
        (["manage.py", "runserver", "--nostatic", "localhost:9003"], ("localhost", 9003)),
    ],
)
def test_runserver_is_recorded_as_it_starts(argv, found):
    assert discovered_server() is None
    record_runserver(argv)
    assert discovered_server() == found


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "migrate"],
        ["manage.py"],
        ["manage.py", "runserver", "--noasgi"],  # Django's WSGI server: no WebSockets
        ["manage.py", "runserver", "[::1]:8000"],
        ["manage.py", "runserver", "-6"],
        ["manage.py", "runserver", "not a port"],
        ["manage.py", "runserver", "--no-such-option"],
    ],
)
def test_other_commands_and_unusable_addresses_record_nothing(argv):
    record_runserver(argv)
    assert discovered_server() is None


def test_only_daphnes_runserver(monkeypatch):
    from django.core import management

    monkeypatch.setattr(management, "get_commands", lambda: {"runserver": "django.core"})
    record_runserver(["manage.py", "runserver"])
    assert discovered_server() is None
