"""The page's short-lived token expires; the client gets a new one from ``/broadcasting/token``.

The server closes a connection whose token has expired (4011). The refresh callback that
``{% broadcasting_client %}`` installs fetches a fresh token with the session cookie, and the
client reconnects and resubscribes: the page keeps receiving, with no reload.
"""

from __future__ import annotations

import uuid

from tests.e2e.conftest import wait_connected
from tests.e2e.test_notifications import send_notification


def test_expired_token_is_refreshed_without_a_reload(server_factory, site_users, login, shots):
    from tests.e2e.conftest import Site

    # 3-second tokens; the server checks expiry every second (activity timeout 4 s / 4).
    server = server_factory(
        "daphne",
        env={"BROADCAST_CLIENT_TOKEN_TTL": "3", "BROADCAST_ACTIVITY_TIMEOUT": "4"},
        ready_path="/accounts/login/",
    )
    site = Site(server, dict(site_users))
    alice = login(site, "alice", "/notifications/")
    wait_connected(alice, "notifications")
    first_token = alice.evaluate("window.Echo.token")
    alice.evaluate(
        "() => { window.__refreshed = 0; window.Echo.on('token', () => { window.__refreshed += 1; }); }"
    )

    # Expiry closes the connection; the client refreshes its token and comes back.
    alice.wait_for_function("window.__refreshed >= 1", timeout=20_000)
    wait_connected(alice, "notifications")
    assert alice.evaluate("window.Echo.token") != first_token

    carol = login(site, "carol")
    tag = uuid.uuid4().hex[:6]
    send_notification(carol, "alice", f"after refresh {tag}")
    alice.locator("#toasts .notification", has_text=f"after refresh {tag}").wait_for()
    shots(alice, "after-refresh")
