"""The admin's live stats page in real headless Chromium against a real daphne server.

A staff user logs into the admin, opens the stats page from the admin index, and sees a
WebSocket the test opens appear (and disappear) without reloading the page. The
screenshots land in ``artifacts/e2e/<test>/`` (see tests/e2e/conftest.py).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.e2e.conftest import PASSWORD, TIMEOUT_MS

PAGE = "/admin/django_broadcasting/stats/"


def admin_login(browser: Any, site: Any, username: str, shots: Any) -> Any:
    context = browser.new_context(base_url=site.url(""), viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    shots.pages.append(page)
    page.goto(site.url("/admin/login/?next=/admin/"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    return page


def test_staff_sees_a_connection_appear_without_reload(browser, site, shots):
    page = admin_login(browser, site, "carol", shots)
    page.wait_for_url(re.compile(r"/admin/$"))
    # Linked from the admin index.
    page.click(f'a[href="{PAGE}"] >> nth=0')
    page.wait_for_url(re.compile(re.escape(PAGE) + "$"))
    page.wait_for_selector("#stat-connections[data-value='0']", state="attached")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    shots(page, "admin-stats-empty")

    with connect(site.server.ws_url("/ws?channel=general"), open_timeout=10) as ws:
        ws.recv(timeout=10)  # connected
        ws.recv(timeout=10)  # subscribed
        page.wait_for_selector("#stat-connections[data-value='1']", state="attached")
        page.wait_for_selector("#channels-body tr[data-channel='general']")
        assert page.evaluate("window.__sameDocument") is True
        assert page.inner_text("#channels-body tr[data-channel='general'] td:nth-child(2)").strip() == "1"
        assert page.get_attribute("#bc-status", "data-state") == "ok"
        assert page.locator("#nodes-body tr").count() == 1
        path = shots(page, "admin-stats-live")

    page.wait_for_selector("#stat-connections[data-value='0']", state="attached")
    page.wait_for_selector("#channels-body tr.bc-empty")
    assert page.evaluate("window.__sameDocument") is True
    assert path.exists() and path.stat().st_size > 0


def test_non_staff_gets_the_admin_login(browser, site, shots):
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
        page.goto(site.url(PAGE))
        assert "/admin/login/" in page.url
        assert page.locator("#stat-connections").count() == 0
        shots(page, "non-staff-login")
    finally:
        context.close()


def _luminance(css_color: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_pages_follow_the_admins_dark_mode(browser, site, shots):
    """The charts, cards and console use the admin's colour variables: dark in dark mode."""
    context = browser.new_context(
        base_url=site.url(""), viewport={"width": 1280, "height": 900}, color_scheme="dark"
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        shots.pages.append(page)
        page.goto(site.url("/admin/login/?next=/admin/"))
        page.fill("input[name=username]", "carol")
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(re.compile(r"/admin/$"))
        for path, selector in ((PAGE, ".bc-chart h3"), ("/admin/django_broadcasting/console/", "#content")):
            page.goto(site.url(path))
            page.wait_for_selector(selector)
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            text = page.evaluate(f"getComputedStyle(document.querySelector({selector!r})).color")
            assert _luminance(background) < 0.3 < _luminance(text), (path, background, text)
            shots(page, "dark-" + path.strip("/").replace("/", "-"))
    finally:
        context.close()


@pytest.fixture(autouse=True)
def _close_contexts(browser):
    yield
    for context in list(browser.contexts):
        context.close()
