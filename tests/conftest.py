"""Shared fixtures: real server processes, a migrated SQLite file for them, and real Redis.

- ``server_factory(kind="daphne", env=None, **kwargs)`` starts a ``ServerProcess`` (see
  ``tests/servers.py``) and stops every server it started after the test; their logs are printed
  when the test fails.
- ``daphne_server`` / ``uvicorn_server`` / ``uvicorn_front_server``: one server per test module, for
  read-only checks (``uvicorn_front_server`` runs this project's uvicorn WebSocket protocol).
- ``migrated_db_path``: a SQLite file migrated once per session; servers use it by default.
- ``redis_url`` / ``redis_prefix`` / ``redis_client``: a real Redis (``BROADCAST_TEST_REDIS_URL``,
  default ``redis://127.0.0.1:6379/0``) and a key prefix unique to the test, whose keys are
  deleted afterwards.

Services a test needs (Redis for ``redis_url`` or the ``redis`` marker, Chromium for ``e2e``) fail
the test under ``CI=true`` and skip it elsewhere, so a developer without them can still run the rest.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ServerProcess, run_manage

# The package's fixtures (broadcast_fake, event_fake, broadcasting_isolation) are opt-in, as for
# any project that uses them.
pytest_plugins = ["django_broadcasting.testing"]

REDIS_URL = os.environ.get("BROADCAST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_service(available: bool, what: str) -> None:
    """Fail under CI (a required part is missing), skip elsewhere."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} is required under CI=true but is not available", pytrace=False)
    pytest.skip(f"{what} is not available")


# -- service availability (checked once per session) -------------------------------------------
_redis_state: dict[str, Any] = {}


def redis_available() -> bool:
    if "ok" not in _redis_state:
        import redis

        try:
            client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
            _redis_state["ok"] = bool(client.ping())
            client.close()
        except Exception:  # any failure means "no usable Redis"
            _redis_state["ok"] = False
    return _redis_state["ok"]


def chromium_path() -> str | None:
    env_path = os.environ.get("CHROMIUM")
    for candidate in (env_path, *CHROMIUM_CANDIDATES):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def _is_e2e(item: pytest.Item) -> bool:
    return item.get_closest_marker("e2e") is not None or "e2e" in Path(str(item.path)).parts


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test using the Redis fixtures is a Redis test, so `-m "not redis"` deselects it.
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if {"redis_url", "redis_prefix", "redis_client"} & set(fixtures):
            item.add_marker(pytest.mark.redis)
        if {"server_factory", "daphne_server", "uvicorn_server", "uvicorn_front_server", "asgi_server"} & set(
            fixtures
        ):
            item.add_marker(pytest.mark.integration)
    # Browser tests last (after pytest-django's ordering): Playwright's sync API keeps an asyncio
    # loop registered as running in the main thread until its session fixture ends, and every
    # async_to_sync() call in a later test would then fail.
    items[:] = [item for item in items if not _is_e2e(item)] + [item for item in items if _is_e2e(item)]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("redis"):
        require_service(redis_available(), f"Redis at {REDIS_URL}")
    if item.get_closest_marker("e2e"):
        require_service(chromium_path() is not None, "Chromium (Debian package 'chromium')")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    # Keep each phase's report on the item so fixture teardown can tell whether the test failed.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call"))


@pytest.fixture(autouse=True)
def _isolated_broadcasting(broadcasting_isolation: None) -> None:
    """Every test of this suite starts with an empty memory outbox and no leftover event fake."""


# -- server processes ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def migrated_db_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with every migration applied, shared by the server processes of the session."""
    path = tmp_path_factory.mktemp("server-db") / "db.sqlite3"
    run_manage("migrate", "--noinput", "-v", "0", env={"DATABASE_PATH": str(path)})
    return path


ServerFactory = Callable[..., ServerProcess]


def _server_kwargs(db_path: Path, log_dir: Path, env: dict[str, str] | None, kwargs: dict) -> dict:
    merged_env = {"DATABASE_PATH": str(db_path), **(env or {})}
    kwargs.setdefault("log_path", log_dir / f"{kwargs.get('kind', 'daphne')}-{uuid.uuid4().hex[:8]}.log")
    return {"env": merged_env, **kwargs}


@pytest.fixture
def _redis_prefixes() -> Iterator[list[str]]:
    """The test's Redis key prefixes (``redis_prefix``): every key under them is deleted at the end.

    ``server_factory`` depends on this fixture, so its servers stop before the keys are deleted:
    a server still running would write its reports again after the clean-up.
    """
    prefixes: list[str] = []
    yield prefixes
    if not prefixes:
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for prefix in prefixes:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def server_factory(
    request: pytest.FixtureRequest, migrated_db_path: Path, tmp_path: Path, _redis_prefixes: list[str]
) -> Iterator[ServerFactory]:
    """Start real servers: ``server_factory("uvicorn", env={"JWT_SECRET": "x"})``; all stop afterwards."""
    started: list[ServerProcess] = []

    def start(kind: str = "daphne", env: dict[str, str] | None = None, **kwargs: Any) -> ServerProcess:
        kwargs["kind"] = kind
        server = ServerProcess(**_server_kwargs(migrated_db_path, tmp_path, env, kwargs))
        started.append(server)
        return server.start()

    yield start
    for server in reversed(started):
        server.stop()
    if _failed(request):
        for server in started:
            print(server.log_tail(200))


def _module_server(
    kind: str,
    request: pytest.FixtureRequest,
    db_path: Path,
    tmp_path_factory,
    env: dict[str, str] | None = None,
    **kwargs: Any,
) -> Iterator:
    """Run one server for a module-scoped fixture (``env`` and ``kwargs`` as ``server_factory`` takes them)."""
    kwargs["kind"] = kind
    server = ServerProcess(**_server_kwargs(db_path, tmp_path_factory.mktemp(kind), env, kwargs))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if request.session.testsfailed:
            print(server.log_tail(200))


@pytest.fixture(scope="module")
def daphne_server(request, migrated_db_path, tmp_path_factory) -> Iterator[ServerProcess]:
    """One daphne process for the module (default env, ``TEST_JWT_SECRET``)."""
    yield from _module_server("daphne", request, migrated_db_path, tmp_path_factory)


@pytest.fixture(scope="module")
def uvicorn_server(request, migrated_db_path, tmp_path_factory) -> Iterator[ServerProcess]:
    """One uvicorn process (``--ws websockets-sansio``) for the module."""
    yield from _module_server("uvicorn", request, migrated_db_path, tmp_path_factory)


@pytest.fixture(scope="module")
def uvicorn_front_server(request, migrated_db_path, tmp_path_factory) -> Iterator[ServerProcess]:
    """One uvicorn process on this project's WebSocket protocol (``server/front/uvicorn.py``)."""
    yield from _module_server("uvicorn-front", request, migrated_db_path, tmp_path_factory)


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def asgi_server(request, migrated_db_path, tmp_path_factory) -> Iterator[ServerProcess]:
    """The example project on daphne, then on uvicorn: a test using it runs on both servers."""
    yield from _module_server(request.param, request, migrated_db_path, tmp_path_factory)


# -- Redis -------------------------------------------------------------------------------------------
@pytest.fixture
def redis_url() -> str:
    """URL of a real Redis server (fails under CI, skips elsewhere, when none answers)."""
    require_service(redis_available(), f"Redis at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str, _redis_prefixes: list[str]) -> str:
    """A key prefix unique to this test; every key starting with it is deleted afterwards (once
    the test's servers have stopped, see ``_redis_prefixes``)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    _redis_prefixes.append(prefix)
    return prefix


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A synchronous ``redis.Redis`` client for assertions (decoded responses)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()
