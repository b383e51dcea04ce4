"""``notify_user`` from a view reaches the chosen user only, live, on any page."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import wait_connected


def send_notification(sender, to: str, title: str, message: str = "from the e2e test") -> None:
    """Use the notifications page's form (the view calls notify_user) as ``sender``."""
    sender.goto("/notifications/")
    sender.select_option("#notify-form select[name=recipient]", label=to)
    sender.fill("#notify-form input[name=title]", title)
    sender.fill("#notify-form textarea[name=message]", message)
    sender.click("#notify-form button[type=submit]")
    sender.locator(".flash", has_text=f"Notification sent to {to}").wait_for()


def titles(page) -> list[str]:
    return page.locator("#toasts .notification strong").all_inner_texts()


@pytest.mark.parametrize("site", ["daphne", "uvicorn"], indirect=True)
def test_notification_reaches_only_its_user(site, login, shots):
    alice = login(site, "alice")
    bob = login(site, "bob", "/notifications/")
    carol = login(site, "carol")  # the sender
    for page in (alice, bob):
        wait_connected(page, "notifications")

    tag = uuid.uuid4().hex[:6]
    send_notification(carol, "bob", f"for bob {tag}")
    bob.locator("#toasts .notification", has_text=f"for bob {tag}").wait_for()
    # On the notifications page it is listed too.
    bob.locator("#notifications .notification", has_text=f"for bob {tag}").wait_for()

    send_notification(carol, "alice", f"for alice {tag}")
    alice.locator("#toasts .notification", has_text=f"for alice {tag}").wait_for()
    # Messages reach one socket in order: had bob's reached alice, it would be there already.
    assert titles(alice) == [f"for alice {tag}"]

    # A last one for bob: once it is in, anything misrouted to bob before it would be too.
    send_notification(carol, "bob", f"again for bob {tag}")
    bob.locator("#toasts .notification", has_text=f"again for bob {tag}").wait_for()
    assert titles(bob) == [f"for bob {tag}", f"again for bob {tag}"]
    assert titles(alice) == [f"for alice {tag}"]
    shots(alice, "alice")
    shots(bob, "bob")
