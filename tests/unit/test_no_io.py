"""The guard of tests/unit/conftest.py refuses I/O (so "tests/unit does no I/O" can fail)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from .conftest import UnitTestDidIO


def test_a_tcp_connection_is_refused():
    with socket.socket() as sock, pytest.raises(UnitTestDidIO, match="tests/integration"):
        sock.connect(("127.0.0.1", 6379))


def test_a_listening_socket_is_refused():
    with socket.socket() as sock, pytest.raises(UnitTestDidIO):
        sock.bind(("127.0.0.1", 0))


def test_a_subprocess_is_refused():
    with pytest.raises(UnitTestDidIO):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


async def test_an_event_loop_still_runs():
    import asyncio

    assert await asyncio.sleep(0, "ok") == "ok"
