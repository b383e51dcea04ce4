"""The admin's charts, channel browser and debug console in real Chromium on real servers.

- A staff superuser sees the charts move while broadcasts flow, and a ``manage.py broadcast
  test`` appear in the debug console within 2 seconds of the command's exit (with its origin,
  ``cli``), pauses and resumes the console, filters it, and closes a user's sockets from the
  channel browser.
- A logged-in user who is not staff gets the admin login on both pages, and the console's
  data URL gives them no events; a staff user without ``view_console`` gets 403.
- Two daphne servers on Redis: the console hears both nodes and the charts draw both.

Screenshots land in ``artifacts/e2e/<test>/`` (see tests/e2e/conftest.py).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import PASSWORD, TIMEOUT_MS, Site
from tests.servers import create_user, run_manage

STATS = "/admin/django_broadcasting/stats/"
CONSOLE = "/admin/django_broadcasting/console/"


def admin_page(browser: Any, site: Site, username: str, shots: Any, path: str) -> Any:
    context = browser.new_context(base_url=site.url(""), viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    shots.pages.append(page)
    page.on("pageerror", lambda err: print(f"[{username} page error] {err}"))
    page.goto(site.url(f"/admin/login/?next={path}"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(re.escape(path) + "$"))
    return page


def cli_env(site: Site) -> dict[str, str]:
    return {key: value for key, value in site.server.env.items() if key.startswith("BROADCAST_")}


def broadcast_test(site: Site, channel: str, message: str) -> float:
    """Run ``manage.py broadcast test``; return the time it exited."""
    run_manage("broadcast", "test", "--channel", channel, "--message", message, env=cli_env(site))
    return time.monotonic()


@contextmanager
def subscribed(site: Site, channel: str) -> Iterator[Any]:
    with connect(site.server.ws_url(f"/ws?channel={channel}"), open_timeout=10) as ws:
        ws.recv(timeout=10)  # connected
        ws.recv(timeout=10)  # subscribed
        yield ws


def wait_row(page: Any, text: str, timeout_ms: float = TIMEOUT_MS) -> Any:
    row = page.locator("#console-body tr[data-type=broadcast]", has_text=text)
    row.wait_for(timeout=timeout_ms)
    return row


def test_staff_sees_charts_move_and_a_cli_broadcast_in_the_console(browser, site, shots):
    channel = f"general-{uuid.uuid4().hex[:6]}"
    stats = admin_page(browser, site, "carol", shots, STATS)
    stats.wait_for_selector("#chart-broadcasts svg path.bc-total", state="attached")
    assert stats.locator(".bc-chart").count() == 5

    with subscribed(site, channel) as ws:
        # The charts: the broadcasts/s line leaves zero while broadcasts flow, without a reload.
        stats.evaluate("window.__sameDocument = true")
        for n in range(3):
            broadcast_test(site, channel, f"chart {n}")
            ws.recv(timeout=10)
        stats.wait_for_function(
            "Number(document.getElementById('chart-broadcasts').dataset.max) > 0", timeout=TIMEOUT_MS
        )
        stats.wait_for_function(
            "Number(document.getElementById('chart-deliveries').dataset.max) > 0", timeout=TIMEOUT_MS
        )
        assert stats.evaluate("window.__sameDocument") is True
        assert int(stats.get_attribute("#chart-connections", "data-last") or "0") >= 1
        # The channel browser: a prefix filter and a selected channel.
        stats.fill("#channel-filter", channel[:9])
        stats.wait_for_selector(f"#channels-body tr[data-channel='{channel}']")
        stats.fill("#channel-filter", "no-such-prefix")
        stats.wait_for_selector("#channels-body tr.bc-empty")
        stats.fill("#channel-filter", "")
        shots(stats, "stats-charts")

        # The console: open, recording, then a CLI broadcast appears within 2 s.
        console = stats.context.new_page()
        shots.pages.append(console)
        console.goto(site.url(CONSOLE))
        console.wait_for_selector("#broadcast-console[data-nodes='1']", state="attached")
        tag = uuid.uuid4().hex[:8]
        exited = broadcast_test(site, channel, f"console {tag}")
        row = wait_row(console, tag, timeout_ms=2000)
        seen = time.monotonic() - exited
        ws.recv(timeout=10)
        assert seen < 2.0, f"the broadcast took {seen:.2f} s to appear"
        assert row.get_attribute("data-origin") == "cli"
        assert row.get_attribute("data-channel") == channel
        assert "test" in row.inner_text() and f"console {tag}" in row.inner_text()
        print(f"console latency after the command exited: {seen * 1000:.0f} ms")

        # Subscribe and unsubscribe events.
        with subscribed(site, channel):
            console.locator(
                f"#console-body tr[data-type=subscribe][data-channel='{channel}']"
            ).first.wait_for()
        console.locator(f"#console-body tr[data-type=unsubscribe][data-channel='{channel}']").first.wait_for()

        # Pause: events are held, not shown; resume shows them.
        console.click("#console-pause")
        held = uuid.uuid4().hex[:8]
        broadcast_test(site, channel, f"held {held}")
        ws.recv(timeout=10)
        console.wait_for_selector("#console-held:has-text('held while paused')")
        assert console.locator("#console-body tr", has_text=held).count() == 0
        console.click("#console-pause")
        wait_row(console, held)
        # Filters by event and channel.
        console.fill("#filter-event", "no-such-event")
        assert console.locator("#console-body tr[data-type=broadcast]:visible").count() == 0
        console.fill("#filter-event", "te")
        assert console.locator("#console-body tr[data-type=broadcast]:visible").count() >= 2
        shots(console, "console")


def test_disconnect_closes_a_users_sockets(browser, site, shots, login):
    # alice's chat page holds a socket of her user; carol closes it from the stats page.
    alice = login(site, "alice", "/")
    alice.wait_for_selector("#connection-state[data-state=connected]", state="attached")
    stats = admin_page(browser, site, "carol", shots, STATS)
    stats.fill("#disconnect-user", str(site.users["alice"]))
    stats.click("#disconnect-form input[type=submit]")
    stats.wait_for_selector("#disconnect-result:has-text('Closed')")
    assert "Closed 0" not in stats.inner_text("#disconnect-result")
    shots(stats, "disconnected")


def test_non_staff_is_refused_and_sees_no_console_traffic(browser, site, shots, migrated_db_path):
    context = browser.new_context(base_url=site.url(""))
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        shots.pages.append(page)
        page.goto(site.url("/accounts/login/?next=/"))
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(re.compile(r"/$"))
        for path in (STATS, CONSOLE):
            page.goto(site.url(path))
            assert "/admin/login/" in page.url
            assert page.locator("#broadcast-console, #broadcast-stats").count() == 0
        # The data URL answers her with the admin login, never events.
        tag = uuid.uuid4().hex[:8]
        broadcast_test(site, "general", f"secret {tag}")
        answer = page.evaluate(
            """url => fetch(url, {credentials: "same-origin"}).then(r => r.text().then(t => [r.url, t]))""",
            CONSOLE + "data/",
        )
        assert "/admin/login/" in answer[0] and tag not in answer[1] and '"events"' not in answer[1]
        shots(page, "non-staff-console")
    finally:
        context.close()

    # Staff without the permission: the stats page yes, the console no (403).
    create_user(migrated_db_path, "dave", PASSWORD, is_staff=True, is_superuser=False)
    dave = admin_page(browser, site, "dave", shots, STATS)
    assert dave.locator("a", has_text="debug console").count() == 0
    response = dave.goto(site.url(CONSOLE))
    assert response is not None and response.status == 403
    answer = dave.evaluate("url => fetch(url).then(r => r.status)", CONSOLE + "data/")
    assert answer == 403


@pytest.mark.redis
def test_two_servers_on_redis_in_charts_and_console(
    browser, server_factory, site_users, shots, redis_url, redis_prefix
):
    from playwright.sync_api import expect

    env = {
        "BROADCAST_DRIVER": "redis",
        "BROADCAST_REDIS_URL": redis_url,
        "BROADCAST_CHANNELS_PREFIX": redis_prefix,
        "BROADCAST_STATS_INTERVAL": "1",  # node reports (and so charts of other nodes) every second
    }
    one = Site(server_factory("daphne", env=env, ready_path="/accounts/login/"), dict(site_users))
    two = Site(server_factory("daphne", env=env, ready_path="/accounts/login/"), dict(site_users))
    channel = f"both-{uuid.uuid4().hex[:6]}"
    with subscribed(one, channel) as ws_one, subscribed(two, channel) as ws_two:
        console = admin_page(browser, one, "carol", shots, CONSOLE)
        console.wait_for_selector("#broadcast-console[data-nodes='2']", state="attached")
        tag = uuid.uuid4().hex[:8]
        exited = broadcast_test(one, channel, f"both {tag}")
        row = wait_row(console, tag, timeout_ms=2000)
        seen = time.monotonic() - exited
        ws_one.recv(timeout=10)
        ws_two.recv(timeout=10)
        assert seen < 2.0, f"the broadcast took {seen:.2f} s to appear"
        # One row for the message, delivered by both nodes.
        expect(row.locator(".bc-node")).to_have_text(re.compile(r"^[^,]+, [^,]+$"))
        expect(row.locator(".bc-sent")).to_have_text("2")
        assert row.get_attribute("data-origin") == "cli"
        shots(console, "console-two-nodes")

        stats = console.context.new_page()
        shots.pages.append(stats)
        stats.goto(one.url(STATS))
        stats.wait_for_selector("#chart-connections[data-nodes='2']", state="attached")
        stats.wait_for_function(
            "Number(document.getElementById('chart-connections').dataset.last) >= 2", timeout=TIMEOUT_MS
        )
        assert stats.locator("#chart-connections path.bc-node").count() == 2
        assert stats.locator("#nodes-body tr").count() == 2
        shots(stats, "stats-two-nodes")


@pytest.fixture(autouse=True)
def _close_contexts(browser):
    yield
    for context in list(browser.contexts):
        context.close()
