"""The live dashboard: ``metrics_update`` on ``admin.dashboard``, for staff only."""

from __future__ import annotations

import re

from tests.e2e.conftest import wait_connected


def test_dashboard_updates_live_for_staff(site, login, shots):
    carol = login(site, "carol", "/dashboard/")
    wait_connected(carol, "dashboard")
    # The server's metrics task publishes every DEMO_METRICS_INTERVAL seconds (2 by default):
    # two updates prove it is periodic, not a one-off.
    carol.wait_for_function(
        "Number(document.getElementById('metric-updates').textContent) >= 2", timeout=20_000
    )
    assert re.fullmatch(r"\d+(\.\d+)? %", carol.inner_text("#metric-cpu"))
    assert re.fullmatch(r"\d+(\.\d+)? %", carol.inner_text("#metric-disk"))
    assert int(carol.inner_text("#metric-active_users")) >= 1
    shots(carol, "dashboard")


def test_dashboard_is_refused_to_other_users(site, login):
    bob = login(site, "bob")
    wait_connected(bob)
    # The page is staff-only...
    bob.goto("/dashboard/")
    assert "/accounts/login/" in bob.url
    # ...and so is the channel: the server refuses bob's subscription (admin.* needs the admin role).
    bob.goto("/")
    wait_connected(bob)
    error = bob.evaluate(
        """() => new Promise((resolve) => {
            window.Echo.private("admin.dashboard").error((e) => resolve(e));
        })"""
    )
    assert error["code"] in (4003, 4030), error
