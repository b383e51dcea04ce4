"""Two server processes sharing Redis: users on different servers chat and get notified."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import Site, wait_connected
from tests.e2e.test_chat import open_room, send
from tests.e2e.test_notifications import send_notification


@pytest.mark.redis
def test_chat_and_notifications_cross_servers(
    server_factory, site_users, login, shots, redis_url, redis_prefix
):
    # The redis driver (docs/scaling.md): cluster-wide presence, history and pub/sub between nodes.
    env = {
        "BROADCAST_DRIVER": "redis",
        "BROADCAST_REDIS_URL": redis_url,
        "BROADCAST_CHANNELS_PREFIX": redis_prefix,
    }
    one = Site(server_factory("daphne", env=env, ready_path="/accounts/login/"), dict(site_users))
    two = Site(server_factory("daphne", env=env, ready_path="/accounts/login/"), dict(site_users))
    alice = login(one, "alice")
    bob = login(two, "bob")
    room_path = open_room(alice, f"e2e-{uuid.uuid4().hex[:8]}")
    bob.goto(room_path)
    for page in (alice, bob):
        wait_connected(page, "room")
    # Presence crosses servers: each sees the other online.
    alice.locator("#members .member", has_text="bob").wait_for()
    bob.locator("#members .member", has_text="alice").wait_for()

    # Whispers cross servers too.
    bob.type("#message-input", "hi")
    alice.locator("#typing", has_text="bob is typing").wait_for()

    send(bob, "from server two")
    alice.locator("#messages .message", has_text="from server two").wait_for()
    send(alice, "from server one")
    bob.locator("#messages .message", has_text="from server one").wait_for()
    shots(alice, "alice-on-one")
    shots(bob, "bob-on-two")

    # A notification sent through server one reaches bob's page on server two.
    carol = login(one, "carol")
    tag = uuid.uuid4().hex[:6]
    send_notification(carol, "bob", f"across {tag}")
    bob.locator("#toasts .notification", has_text=f"across {tag}").wait_for()
