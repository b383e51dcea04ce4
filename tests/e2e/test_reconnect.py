"""Killing the server and starting it again on the same port: the page reconnects by itself."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import wait_connected
from tests.e2e.test_notifications import send_notification


@pytest.mark.parametrize("site", ["daphne", "uvicorn"], indirect=True)
def test_page_reconnects_after_server_restart(site, login, shots, server_factory):
    alice = login(site, "alice", "/notifications/")
    wait_connected(alice, "notifications")
    # A mark that a reload would wipe out.
    alice.evaluate("window.__noReload = 'still here'")

    port = site.server.port
    site.server.kill()  # SIGKILL: no goodbye frame, as a crash
    alice.wait_for_selector("#connection-state:not([data-state=connected])", state="attached")
    shots(alice, "01-disconnected")

    restarted = server_factory(site.server.kind, port=port, ready_path="/accounts/login/")
    assert restarted.port == port
    # The client's backoff brings it back, and it subscribes its channels again.
    wait_connected(alice, "notifications")

    carol = login(site, "carol")
    tag = uuid.uuid4().hex[:6]
    send_notification(carol, "alice", f"after restart {tag}")
    alice.locator("#toasts .notification", has_text=f"after restart {tag}").wait_for()
    assert alice.evaluate("window.__noReload") == "still here"
    shots(alice, "02-reconnected-and-notified")
