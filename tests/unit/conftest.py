"""tests/unit does no I/O: no network connection or listening socket, no subprocess.

Tests that need Redis, a server or a browser live in tests/integration and tests/e2e. Every unit
test runs with ``socket.connect``/``bind`` on IP sockets and ``subprocess.Popen`` refused, so a
test that starts doing I/O fails here instead of quietly becoming slow and flaky. (Unix socket
pairs stay allowed: an asyncio event loop wakes itself up through one.)
"""

from __future__ import annotations

import socket
import subprocess

import pytest


class UnitTestDidIO(AssertionError):
    """A unit test tried to reach the network or start a process: it belongs in tests/integration."""


def _refuse_ip(original):
    def guarded(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise UnitTestDidIO(f"network I/O in a unit test ({address!r}): move it to tests/integration")
        return original(self, address, *args, **kwargs)

    return guarded


def _refuse_process(*args, **kwargs):
    raise UnitTestDidIO(f"a subprocess in a unit test ({args[:1]!r}): move it to tests/integration")


@pytest.fixture(autouse=True)
def _no_io(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _refuse_ip(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse_ip(socket.socket.connect_ex))
    monkeypatch.setattr(socket.socket, "bind", _refuse_ip(socket.socket.bind))
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse_process)
