"""Fixtures for the end-to-end tests: Debian's Chromium driven by Playwright, and the demo site.

- ``browser``: one headless Chromium for the e2e package, launched from ``/usr/bin/chromium`` (or
  ``$CHROMIUM``) through Playwright's ``executable_path``, so no browser is ever downloaded.
- ``site``: a real daphne process serving the example project on a free port, with users
  ``alice``, ``bob`` and the staff user ``carol`` in its database.
- ``login(site, username)``: a new browser context (its own cookies: a separate user) with a
  page logged in through the site's login form.
- ``shots``: ``shots(page, "name")`` saves a screenshot under ``artifacts/e2e/<test>/``; every
  page still open is also captured when a test fails.

Tests wait on DOM conditions (``data-*`` attributes the demo's pages set, elements appearing)
with timeouts, never on fixed sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import chromium_path, require_service
from tests.servers import REPO_ROOT, ServerProcess, create_user

ARTIFACTS = REPO_ROOT / "artifacts" / "e2e"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
# Milliseconds Playwright waits for a DOM condition before failing the test.
TIMEOUT_MS = 15_000
PASSWORD = "e2e-password-123"
USERS = {"alice": False, "bob": False, "carol": True}  # name -> staff


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Everything under tests/e2e drives Chromium: mark it so the root conftest checks for it.
    for item in items:
        path = str(item.fspath).replace("\\", "/")
        if "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
            if path.endswith(("/test_admin_console.py", "/test_admin_stats.py")):
                # The admin's templates differ between Django lines (breadcrumbs, dark mode).
                item.add_marker(pytest.mark.django_matrix)


# Package scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it is open, which would break every asyncio test collected after this package.
@pytest.fixture(scope="package")
def playwright_instance() -> Iterator[Any]:
    require_service(chromium_path() is not None, "Chromium (Debian package 'chromium')")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service(False, "the Python package 'playwright'")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="package")
def browser(playwright_instance: Any) -> Iterator[Any]:
    """A headless Chromium (Debian's), shared by the e2e tests; each test uses its own contexts."""
    browser = playwright_instance.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@dataclass
class Site:
    """The demo site under test: its server process and the ids of its users."""

    server: ServerProcess
    users: dict[str, int] = field(default_factory=dict)

    def url(self, path: str = "/") -> str:
        return self.server.url(path)


@pytest.fixture(scope="session")
def site_users(migrated_db_path: Path) -> dict[str, int]:
    return {name: create_user(migrated_db_path, name, PASSWORD, is_staff=staff, is_superuser=staff)
            for name, staff in USERS.items()}  # fmt: skip


@pytest.fixture
def site(
    request: pytest.FixtureRequest, server_factory: Callable[..., ServerProcess], site_users: dict[str, int]
) -> Site:
    """A daphne process serving the example project (in-memory layer, the demo's default).

    ``@pytest.mark.parametrize("site", ["uvicorn"], indirect=True)`` picks another server.
    """
    kind = getattr(request, "param", "daphne")
    return Site(server_factory(kind, ready_path="/accounts/login/"), dict(site_users))


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Iterator[Callable[[Any, str], Path]]:
    """``shots(page, name)`` saves ``artifacts/e2e/<test>/<name>.png``; open pages are saved on failure."""
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    pages: list[Any] = []

    def shoot(page: Any, name: str) -> Path:
        if page not in pages:
            pages.append(page)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    shoot.pages = pages  # type: ignore[attr-defined]
    yield shoot
    failed = any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))
    if failed:
        for index, page in enumerate(pages):
            try:
                if not page.is_closed():
                    page.screenshot(path=str(folder / f"failure-{index}.png"), full_page=True)
            except Exception:  # the browser may be what failed; the test's own error matters more
                pass


@pytest.fixture
def login(browser: Any, shots: Any) -> Iterator[Callable[..., Any]]:
    """``login(site, "alice")`` returns a page of a fresh browser context, logged in as alice."""
    contexts: list[Any] = []

    def open_as(site: Site, username: str, path: str = "/") -> Any:
        context = browser.new_context(base_url=site.url(""), viewport={"width": 1100, "height": 760})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("console", lambda msg: print(f"[{username} console] {msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: print(f"[{username} page error] {err}"))
        page.goto(site.url("/accounts/login/?next=" + path))
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(re.compile(re.escape(site.url(path)) + r"$"))
        shots.pages.append(page)
        return page

    yield open_as
    for context in contexts:
        context.close()


def wait_connected(page: Any, channel_attr: str | None = None) -> None:
    """Wait until the page's client is connected (and, if given, ``body[data-<attr>=subscribed]``)."""
    page.wait_for_selector("#connection-state[data-state=connected]", state="attached")
    if channel_attr:
        page.wait_for_selector(f"body[data-{channel_attr}=subscribed]", state="attached")
