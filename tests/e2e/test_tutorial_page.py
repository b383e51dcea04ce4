"""The tutorial's page in a real browser: Debian's Chromium on the project docs/tutorial.md builds.

The project is made by following the tutorial literally (``tests/tutorial.py``), served by its own
``runserver``; alice and bob log in through its login page in two browser contexts, as the tutorial's
"private window" does. The story of steps 7 and 8: the public message and alice's notification show on
her page only, bob's on his; the lobby shows who joins and leaves and what is said, from the pages, from
the Django shell and to the tutorial's ``listen.py``. The WebSocket-level test of the same story, run on
both Django lines, is ``tests/test_tutorial.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import TIMEOUT_MS
from tests.tutorial import Tutorial, assert_lines_in_order, served_tutorial

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tutorial]:
    with served_tutorial(tmp_path_factory.mktemp("tutorial-browser")) as tutorial:
        yield tutorial


class Window:
    """A browser window (its own cookies) logged in through the tutorial's login page."""

    def __init__(self, browser: Any, tutorial: Tutorial, username: str, password: str) -> None:
        self.context = browser.new_context(base_url=tutorial.base_url, viewport={"width": 900, "height": 700})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        self.page.on("console", self._console)
        self.page.goto("/")  # the lobby sends a visitor to the login page first
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("button")
        self.page.wait_for_url(tutorial.url("/"))

    def _console(self, msg: Any) -> None:
        # The browser asks for /favicon.ico by itself, and the tutorial's site has none: not the page's error.
        if msg.type == "error" and not str((msg.location or {}).get("url", "")).endswith("/favicon.ico"):
            self.problems.append(f"console {msg.type}: {msg.text} ({msg.location})")

    def shows(self, selector: str, text: str) -> None:
        self.page.locator(selector, has_text=text).first.wait_for()

    def online(self, names: str) -> None:
        self.page.wait_for_function(
            "names => document.getElementById('online').textContent === names", arg=names, timeout=TIMEOUT_MS
        )

    def say(self, text: str) -> None:
        self.page.fill("#say input[name=text]", text)
        self.page.press("#say input[name=text]", "Enter")

    def items(self, list_id: str) -> list[str]:
        return self.page.locator(f"#{list_id} li").all_inner_texts()

    def close(self) -> None:
        self.context.close()


def test_tutorial_page_in_chromium(browser: Any, tutorial: Tutorial, shots: Any) -> None:
    tutorial.run("check")
    alice = Window(browser, tutorial, "alice", "alice-password")
    shots.pages.append(alice.page)
    alice.online("alice")  # "You see 'Online: alice'"

    # A notification: the public test message and alice's own, on her page.
    tutorial.run("notify-cli")
    alice.shows("#notifications li", "Hello everyone")
    alice.shows("#notifications li", "Hello Alice: Your first live notification")

    # bob in a private window: alice sees him join; his notification is his only.
    bob = Window(browser, tutorial, "bob", "bob-password")
    shots.pages.append(bob.page)
    bob.online("alice, bob")
    alice.online("alice, bob")
    alice.shows("#messages li", "bob joined")
    tutorial.run("notify-python")
    bob.shows("#notifications li", "Hi Bob: This one is just for you")
    assert alice.items("notifications") == ["Hello everyone", "Hello Alice: Your first live notification"]
    assert bob.items("notifications") == ["Hi Bob: This one is just for you"]

    # Type in either window: both see the message. Close bob's: alice sees him leave.
    alice.say("Hello bob")
    bob.shows("#messages li", "alice: Hello bob")
    alice.shows("#messages li", "alice: Hello bob")
    bob.say("Hi alice")
    alice.shows("#messages li", "bob: Hi alice")
    shots(alice.page, "01-alice-and-bob")
    assert not bob.problems, bob.problems
    bob.close()
    alice.shows("#messages li", "bob left")
    alice.online("alice")

    # From Python: listen.py joins as bob; alice's page and the shell talk to it.
    tutorial.write("listen.py")
    expected = tutorial.expected_output("listen")
    listen = tutorial.start("listen")
    listen.wait_for_line(expected[0])
    alice.online("alice, bob")
    _, text = expected[1].split(": ", 1)
    alice.say(text)
    listen.wait_for_line(expected[1])
    tutorial.run("chat-python")
    alice.shows("#messages li", "the shell: Hello from Python")
    listen.wait_for_line(expected[2])
    shots(alice.page, "02-alice-with-python")
    assert alice.items("messages") == [
        "bob joined",
        "alice: Hello bob",
        "bob: Hi alice",
        "bob left",
        "bob joined",
        f"alice: {text}",
        "the shell: Hello from Python",
    ]
    assert not alice.problems, alice.problems
    alice.close()
    listen.wait_for_line(expected[3])
    assert_lines_in_order(expected, listen.output, "listen.py's output")
