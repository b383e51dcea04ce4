"""In Chromium: the site's own pages connect while ``CORS_ALLOWED_ORIGINS`` names another front end.

The browser sets ``Origin`` and ``Host`` itself, so this is the case the policy is for: a page of
``http://127.0.0.1:PORT`` opens sockets to that host (the demo's client on ``/ws`` and a raw
socket on the Pusher ``/app/{key}``) and is accepted; a page of another origin on the same
machine (``http://localhost:PORT``) is refused when it opens a socket to ``127.0.0.1``, and
accepted on its own host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import Site, wait_connected
from tests.integration.pusher_client import APP_KEY, PUSHER_ENV
from tests.servers import ServerProcess, wait_for

FRONT_END = "https://app.example.com"

# Open a WebSocket from the page; resolve with its first event name, or how it closed.
OPEN_SOCKET = """
(url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onmessage = (e) => { resolve("message:" + JSON.parse(e.data).event); ws.close(); };
  ws.onclose = (e) => resolve("closed:" + e.code);
})
"""


@pytest.fixture
def origin_site(
    request: pytest.FixtureRequest, server_factory: Callable[..., ServerProcess], site_users: dict[str, int]
) -> Site:
    kind = getattr(request, "param", "daphne")
    env = {"CORS_ALLOWED_ORIGINS": FRONT_END, **PUSHER_ENV}
    return Site(server_factory(kind, env=env, ready_path="/accounts/login/"), dict(site_users))


def open_socket(page: Any, url: str) -> str:
    return page.evaluate(OPEN_SOCKET, url)


@pytest.mark.parametrize("origin_site", ["daphne", "uvicorn"], indirect=True)
def test_site_pages_connect_with_cors_set_for_another_front_end(origin_site, login, browser, shots):
    server = origin_site.server
    page = login(origin_site, "alice")
    wait_connected(page)  # the demo's own client, on /ws
    assert open_socket(page, server.ws_url("/ws?channel=general")) == "message:connected"
    pusher = server.ws_url(f"/app/{APP_KEY}?protocol=7&client=js&version=8.4.0")
    assert open_socket(page, pusher) == "message:pusher:connection_established"
    shots(page, "own-page")

    # Another origin: a page of http://localhost:PORT opening a socket to 127.0.0.1:PORT.
    context = browser.new_context()
    try:
        other = context.new_page()
        other.goto(f"http://localhost:{server.port}/accounts/login/")
        assert open_socket(other, server.ws_url("/ws?channel=general")) == "closed:1006"
        assert open_socket(other, pusher) == "closed:1006"
        # On its own host it is the same origin again.
        assert open_socket(other, f"ws://localhost:{server.port}/ws") == "message:connected"
    finally:
        context.close()

    needle = f"Origin 'http://localhost:{server.port}'"

    def refusal_logged() -> bool:
        return any(
            needle in line and "WARNING" in line and f"Host '127.0.0.1:{server.port}'" in line
            for line in server.log_text().splitlines()
        )

    wait_for(refusal_logged, 10, message=f"the refusal in the log\n{server.log_tail()}")
