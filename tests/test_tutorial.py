"""docs/tutorial.md, step by step, on a fresh ``startproject`` in a temporary folder.

The test runs every command and writes every file of the tutorial as its code blocks say (see
``tests/tutorial.py`` for how blocks are marked and what stands in for the virtual environment), serves the
project with the tutorial's own server command (daphne's ``runserver``, a real process on a free port), and
then does what the story does with real clients: users log in through the tutorial's login page, connect
with the token its page carries, and the test checks that the notification reaches the right user only and
that the presence chat shows members joining and leaving and the messages, in a browser-like client and in
the tutorial's ``listen.py``. It runs on both lines of the version matrix; the Chromium check of the same
page is ``tests/e2e/test_tutorial_page.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.wsclient import connect, expect, nothing, recv, subscribe
from tests.tutorial import TUTORIAL, Tutorial, TutorialError, assert_lines_in_order, parse, served_tutorial

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

CONFIG_SCRIPT = re.compile(r'<script id="broadcasting-config" type="application/json">(.*?)</script>', re.S)
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
LOBBY = "presence.room.lobby"


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tutorial]:
    """The tutorial's project, set up as the tutorial says, with its server running."""
    with served_tutorial(tmp_path_factory.mktemp("tutorial")) as tutorial:
        yield tutorial


class Visitor:
    """Someone logged in through the tutorial's login page, with the lobby page's client configuration."""

    def __init__(self, http: httpx.AsyncClient, lobby_html: str) -> None:
        self.http = http
        self.lobby_html = lobby_html
        self.config = json.loads(CONFIG_SCRIPT.search(lobby_html).group(1))
        self.csrf = CSRF_INPUT.search(lobby_html).group(1)

    async def socket(self, tutorial: Tutorial):
        """Connect as the page's JavaScript client does: the page's URL and token, the page's Origin."""
        assert self.config["token"], "the lobby page carries no token for its logged-in user"
        ws = await connect(
            f"{self.config['url']}?auth_token={self.config['token']}", origin=tutorial.base_url
        )
        greeting = await recv(ws)
        assert greeting["event"] == "connected", greeting
        assert greeting["data"]["user_id"] == self.config["userId"]
        return ws

    async def say(self, text: str) -> None:
        """Post to the lobby as the page's form does."""
        response = await self.http.post("/say/", data={"csrfmiddlewaretoken": self.csrf, "text": text})
        assert response.status_code == 204, response.text


async def log_in(tutorial: Tutorial, username: str, password: str) -> Visitor:
    http = httpx.AsyncClient(base_url=tutorial.base_url, follow_redirects=True, timeout=20)
    page = await http.get("/")
    assert page.url.path == "/accounts/login/", f"the lobby does not ask to log in: {page.url}"
    lobby = await http.post(
        str(page.url),
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": CSRF_INPUT.search(page.text)[1],
        },
    )
    assert lobby.status_code == 200 and lobby.url.path == "/", f"login as {username} failed: {lobby.url}"
    assert f"Logged in as <strong>{username}</strong>" in lobby.text
    return Visitor(http, lobby.text)


def test_tutorial_blocks_are_all_marked() -> None:
    """Every code block of the tutorial says what a reader does with it; an unmarked one is refused."""
    blocks = parse(TUTORIAL.read_text())
    assert [b.action for b in blocks].count("server") == 1
    written = {b.arg for b in blocks if b.action in {"write", "append"}}
    assert {"mysite/settings.py", "mysite/asgi.py", "chat/broadcast_channels.py", "listen.py"} <= written
    with pytest.raises(TutorialError, match="without a"):
        parse("Some text\n\n```sh\nrm -rf /\n```\n")
    with pytest.raises(TutorialError, match="does not name"):
        parse("Create a file:\n\n<!-- tutorial: write chat/x.py -->\n```python\nx = 1\n```\n")


async def test_the_tutorial_works_as_written(tutorial: Tutorial) -> None:
    # Step 7: right after the server starts, before any page was opened, other processes reach it.
    await asyncio.to_thread(tutorial.run, "check")

    alice = await log_in(tutorial, "alice", "alice-password")
    bob = await log_in(tutorial, "bob", "bob-password")
    # The tutorial tells the reader that alice is user 1 and bob user 2.
    assert (alice.config["userId"], bob.config["userId"]) == ("1", "2")
    # The page's client is the package's JavaScript file, served by the tutorial's server.
    script = await alice.http.get(alice.config["clientUrl"])
    assert script.status_code == 200 and "export class Broadcasting" in script.text

    alice_ws = await alice.socket(tutorial)
    bob_ws = await bob.socket(tutorial)
    try:
        # -- the page's channels: public general, the user's own user.<id>, the presence lobby ----
        for ws, visitor in ((alice_ws, alice), (bob_ws, bob)):
            assert (await subscribe(ws, "general"))["event"] == "subscribed"
            assert (await subscribe(ws, f"user.{visitor.config['userId']}"))["event"] == "subscribed"
        refused = await subscribe(bob_ws, "user.1")
        assert refused["event"] == "error" and refused["data"]["code"] == 4030, refused

        # -- step 7: a notification, from the command line then from Python --------------------
        await asyncio.to_thread(tutorial.run, "notify-cli")
        for ws in (alice_ws, bob_ws):
            test = await expect(ws, "test", channel="general")
            assert test["data"]["message"] == "Hello everyone"
        note = await expect(alice_ws, "notification", channel="user.1")
        assert (note["data"]["title"], note["data"]["message"]) == (
            "Hello Alice",
            "Your first live notification",
        )
        await nothing(bob_ws, 1.0)  # alice's notification is hers only

        await asyncio.to_thread(tutorial.run, "notify-python")
        note = await expect(bob_ws, "notification", channel="user.2")
        assert (note["data"]["title"], note["data"]["message"]) == ("Hi Bob", "This one is just for you")
        await nothing(alice_ws, 1.0)

        # -- step 7: the chat, alice and bob in their browsers ----------------------------------
        joined = await subscribe(alice_ws, LOBBY)
        assert [m["info"] for m in joined["data"]["members"]] == [{"name": "alice"}], joined
        joined = await subscribe(bob_ws, LOBBY)
        assert [m["info"]["name"] for m in joined["data"]["members"]] == ["alice", "bob"], joined
        added = await expect(alice_ws, "member_added", channel=LOBBY)
        assert added["data"] == {"id": "2", "info": {"name": "bob"}}

        await alice.say("Hello bob")
        for ws in (alice_ws, bob_ws):
            said = await expect(ws, "MessagePosted", channel=LOBBY)
            assert said["data"] == {"author": "alice", "text": "Hello bob"}
        await bob.say("Hi alice")
        said = await expect(alice_ws, "MessagePosted", channel=LOBBY)
        assert said["data"] == {"author": "bob", "text": "Hi alice"}

        await bob_ws.close()  # bob closes his window
        removed = await expect(alice_ws, "member_removed", channel=LOBBY)
        assert removed["data"]["id"] == "2"

        # -- step 8: bob comes back from Python ------------------------------------------------
        tutorial.write("listen.py")
        expected = tutorial.expected_output("listen")
        listen = tutorial.start("listen")
        await asyncio.to_thread(listen.wait_for_line, expected[0])  # online: alice, bob
        added = await expect(alice_ws, "member_added", channel=LOBBY)
        assert added["data"]["info"] == {"name": "bob"}

        # "Type 'Hi Bob, welcome back' on alice's page": the line the tutorial shows after the list.
        author, text = expected[1].split(": ", 1)
        assert author == "alice"
        await alice.say(text)
        said = await expect(alice_ws, "MessagePosted", channel=LOBBY)  # alice's page shows it too
        assert said["data"] == {"author": "alice", "text": text}
        await asyncio.to_thread(listen.wait_for_line, expected[1])

        await asyncio.to_thread(tutorial.run, "chat-python")
        said = await expect(alice_ws, "MessagePosted", channel=LOBBY)
        assert said["data"] == {"author": "the shell", "text": "Hello from Python"}
        await asyncio.to_thread(listen.wait_for_line, expected[2])

        await alice_ws.close()  # alice closes her page
        await asyncio.to_thread(listen.wait_for_line, expected[3])
        assert_lines_in_order(expected, listen.output, "listen.py's output")
        assert len(listen.output.splitlines()) == len(expected), listen.output
    finally:
        for ws in (alice_ws, bob_ws):
            await ws.close()
        for visitor in (alice, bob):
            await visitor.http.aclose()

    tutorial.assert_all_followed()
    # "It prints Starting ASGI/Daphne ... development server": daphne serves, as step 7 says.
    assert "Starting ASGI/Daphne" in tutorial.server.output, tutorial.server.output
    # Nothing went wrong on the server's side either.
    assert "Traceback" not in tutorial.server.output, tutorial.server.output


def test_the_tutorial_project_is_a_fresh_startproject(tutorial: Tutorial) -> None:
    """The folder holds what startproject, startapp and the tutorial's files made, and nothing of this repo."""
    project = tutorial.cwd
    assert project == tutorial.workdir / "mysite"
    for name in (
        "manage.py",
        "mysite/settings.py",
        "chat/apps.py",
        "chat/views.py",
        "listen.py",
        "db.sqlite3",
    ):
        assert (project / name).is_file(), name
    settings = (project / "mysite/settings.py").read_text()
    assert settings.count("INSTALLED_APPS = ") == 2  # startproject's list, then the tutorial's line
    assert not Path(project / "example_project").exists()
