"""Discovery in one process: the project identity, records, the server's refusal, the publisher's checks.

The two-checkout scenarios with real server processes are in ``tests/integration/test_discovery.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from django_broadcasting import discovery
from django_broadcasting.conf import reload_broadcasting_settings
from django_broadcasting.exceptions import TransportError
from django_broadcasting.server import announce
from tests.servers import free_port


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    """Records go to a temporary directory of this test, and settings are read afresh."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    for name in (
        "BROADCAST_PROJECT",
        "BROADCAST_WEBSOCKET_HOST",
        "BROADCAST_WEBSOCKET_PORT",
        "BROADCAST_TRIGGER_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    reload_broadcasting_settings()
    yield
    reload_broadcasting_settings()


def write_record(**fields):
    record = {"host": "127.0.0.1", "port": 8000, **discovery.server_identity(), **fields}
    discovery.record_path().write_text(json.dumps(record))
    return record


def dead_pid() -> int:
    pid = os.getpid() + 10_000
    while discovery.pid_alive(pid):
        pid += 1
    return pid


# -- identity ---------------------------------------------------------------------------------------------
# -- records ----------------------------------------------------------------------------------------------
LISTENERS = """
import socket
from django_broadcasting.server.announce import listening_address
assert listening_address() is None  # a fresh process listens nowhere
with socket.socket() as listener:
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    assert listening_address() == ("127.0.0.1", listener.getsockname()[1]), listening_address()
    with socket.socket(socket.AF_INET6) as second:  # two ports: ambiguous, wait for a request
        second.bind(("::1", 0))
        second.listen()
        assert listening_address() is None
print("ok")
"""


def test_a_server_finds_its_listening_address_before_any_request():
    # In a fresh process: this one may hold listening sockets of earlier tests.
    result = subprocess.run([sys.executable, "-c", LISTENERS], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


# -- where a publisher posts ----------------------------------------------------------------------------------
# -- the server's refusal ----------------------------------------------------------------------------------
# -- the publisher's checks --------------------------------------------------------------------------------
def answer(**identity):
    return {"ok": True, "messages": 1, "server": {**discovery.server_identity(), **identity}}


def test_the_python_helpers_raise_one_line_that_says_what_to_set(settings, monkeypatch):
    from django_broadcasting import broadcast_to_channel
    from django_broadcasting.core import serving

    monkeypatch.setattr(serving, "_local_server", None)  # a client process, not the server
    port = free_port()
    settings.BROADCASTING = {"WEBSOCKET_PORT": port}
    with pytest.raises(TransportError) as info:
        broadcast_to_channel("general", "e", {})
    detail = info.value.detail
    assert "\n" not in detail and f"127.0.0.1:{port}" in detail
    assert "BROADCAST_WEBSOCKET_PORT" in detail and "start this project's server" in detail


# -- receipts ---------------------------------------------------------------------------------------------
def test_serve_at_keeps_the_record(monkeypatch):
    from tests.servers import wait_for

    monkeypatch.setattr(announce, "REFRESH_INTERVAL", 0.01)
    monkeypatch.setattr(announce, "_keeper", None)
    try:
        announce.serve_at("127.0.0.1", 8777)
        assert discovery.read_record()["port"] == 8777
        write_record(port=8000, pid=dead_pid())  # its process is gone: the live server takes over
        wait_for(
            lambda: discovery.read_record()["port"] == 8777, timeout=5, message="the record to come back"
        )
        discovery.record_path().unlink()  # a publisher found it stale
        wait_for(discovery.record_path().exists, timeout=5, message="the record to come back")
        with socket.socket() as listener:  # another live server of the project recorded itself: left alone
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            other = listener.getsockname()[1]
            write_record(port=other, pid=os.getppid(), instance="other")
            for _ in range(20):  # a negative check: twenty refresh periods
                time.sleep(0.01)
                assert discovery.read_record()["port"] == other
        # Its process lives on but nothing listens there any more (a reused pid): taken over.
        wait_for(
            lambda: discovery.read_record()["port"] == 8777, timeout=5, message="the record to come back"
        )
    finally:
        announce.stop_serving()
