"""Signing up dispatches the ``UserRegisteredEvent``: open home pages see it live."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import wait_connected


def test_signup_is_announced_live(site, browser, shots):
    watcher = browser.new_context(base_url=site.url(""))
    newcomer = browser.new_context(base_url=site.url(""))
    try:
        home = watcher.new_page()
        home.goto("/")
        wait_connected(home, "registrations")  # anonymous: public channel user.registered

        name = f"new{uuid.uuid4().hex[:8]}"
        page = newcomer.new_page()
        page.goto("/accounts/signup/")
        page.fill("input[name=username]", name)
        page.fill("input[name=email]", f"{name}@example.com")
        page.fill("input[name=password1]", "a-Long-enough-pass-42")
        page.fill("input[name=password2]", "a-Long-enough-pass-42")
        page.click("#signup-form button[type=submit]")
        page.wait_for_url(site.url("/"))
        page.locator("#whoami", has_text=name).wait_for()

        home.locator("#registrations li", has_text=f"{name} (#").wait_for()
        shots(home, "home-sees-signup")
    finally:
        watcher.close()
        newcomer.close()
