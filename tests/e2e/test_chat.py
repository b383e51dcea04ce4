"""Two users chat in one room, each in their own browser context: messages, presence and typing."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.e2e.conftest import wait_connected


def open_room(page, name: str) -> str:
    """Create (or open) the room ``name`` from the room list; return the room's path."""
    page.goto("/chat/")
    page.fill("#room-form input[name=name]", name)
    page.click("#room-form button[type=submit]")
    page.wait_for_url(re.compile(r"/chat/\d+/$"))
    return page.url.split(page.url.split("/chat/")[0], 1)[1]


def send(page, text: str) -> None:
    page.fill("#message-input", text)
    page.press("#message-input", "Enter")


@pytest.mark.parametrize("site", ["daphne", "uvicorn"], indirect=True)
def test_two_users_chat_with_presence_and_typing(site, login, shots):
    alice = login(site, "alice")
    bob = login(site, "bob")
    room_path = open_room(alice, f"e2e-{uuid.uuid4().hex[:8]}")
    bob.goto(room_path)
    for page in (alice, bob):
        wait_connected(page, "room")

    # Presence: each sees both members online.
    for page in (alice, bob):
        page.locator("#members .member", has_text="alice").wait_for()
        page.locator("#members .member", has_text="bob").wait_for()
    shots(alice, "01-alice-both-online")

    # Typing indicator, by whisper: bob types, alice sees it (and bob does not see himself).
    bob.fill("#message-input", "hel")
    bob.type("#message-input", "lo")
    alice.locator("#typing", has_text="bob is typing").wait_for()
    assert bob.inner_text("#typing") == ""
    shots(alice, "02-alice-sees-bob-typing")

    # Messages: saved, broadcast after commit, shown to the other user without a reload.
    send(bob, "hello from bob")
    alice.locator("#messages .message", has_text="hello from bob").wait_for()
    bob.locator("#messages .message", has_text="hello from bob").wait_for()
    # The typing indicator goes when the message arrives.
    alice.wait_for_function("document.getElementById('typing').textContent === ''")

    send(alice, "hi bob, alice here")
    bob.locator("#messages .message", has_text="hi bob, alice here").wait_for()
    shots(alice, "03-alice-chat")
    shots(bob, "04-bob-chat")

    # Each message shows once on each side (the sender is skipped by to_others(), the POST answers it).
    for page in (alice, bob):
        assert page.locator("#messages .message").count() == 2

    # The messages were saved: a fresh page load shows them from the database.
    bob.reload()
    bob.locator("#messages .message", has_text="hi bob, alice here").wait_for()

    # Leaving: bob closes his page, alice's online list drops him.
    bob.close()
    alice.locator("#members .member", has_text="bob").wait_for(state="detached")
    alice.locator("#members .member", has_text="alice").wait_for()
    shots(alice, "05-alice-alone")
