"""The Origin policy on real daphne and uvicorn sockets, for ``/ws`` and the Pusher ``/app/{key}``.

``CORS_ALLOWED_ORIGINS`` names another front end (``https://app.example.com``): the site's own
pages (the Origin of the Host the socket was opened on) still connect, the listed origin
connects, clients without an Origin connect, and foreign or look-alike origins get HTTP 403 with
a WARNING in the server log. A second server keeps ``ALLOWED_HOSTS`` to ``localhost`` with
``DEBUG`` off: a Host outside it (an IP, a name the client made up) earns no same-origin pass.
A third terminates TLS itself: ``https://`` pages are same-origin over ``wss``, ``http://`` ones
are not. One server per kind and configuration for the whole module.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import uuid
from functools import partial

import pytest
import websockets

from tests.conftest import _module_server, require_service
from tests.integration.pusher_client import APP_KEY, PUSHER_ENV
from tests.integration.redis_support import make_certificate
from tests.integration.wsclient import connect
from tests.servers import ServerProcess, free_port, port_open, wait_for

pytestmark = pytest.mark.integration

FRONT_END = "https://app.example.com"
# Each endpoint and the first event its server sends once the handshake is accepted.
ENDPOINTS = {
    "/ws?channel=general": "connected",
    f"/app/{APP_KEY}?protocol=7&client=js&version=8.4.0": "pusher:connection_established",
}
PATHS = list(ENDPOINTS)


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def site(request, migrated_db_path, tmp_path_factory):
    """A server whose CORS_ALLOWED_ORIGINS lists another front end (DEBUG on, as the example runs)."""
    env = {"CORS_ALLOWED_ORIGINS": FRONT_END, **PUSHER_ENV}
    yield from _module_server(request.param, request, migrated_db_path, tmp_path_factory, env)


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def strict_site(request, migrated_db_path, tmp_path_factory):
    """DEBUG off and ALLOWED_HOSTS = ["localhost"]: a production-like Host allow-list."""
    env = {
        "CORS_ALLOWED_ORIGINS": FRONT_END,
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "localhost",
        **PUSHER_ENV,
    }
    yield from _module_server(request.param, request, migrated_db_path, tmp_path_factory, env)


def _url(server: ServerProcess, path: str, host: str | None) -> tuple[str, dict]:
    """The URL to open and the connect() arguments; ``host`` is the Host header to send instead."""
    if host is None:
        return server.ws_url(path), {}
    # TCP to the server's own address, while the URL (hence the Host header) names ``host``.
    return f"ws://{host}:{server.port}{path}", {"host": server.host, "port": server.port, "proxy": None}


async def assert_accepted(server: ServerProcess, path: str, origin: str | None, host: str | None = None):
    url, kwargs = _url(server, path, host)
    async with await connect(url, origin=origin, **kwargs) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["event"] == ENDPOINTS[path], (origin, frame)


async def assert_refused(
    server: ServerProcess, path: str, origin: str, host: str | None = None, status: int = 403
):
    url, kwargs = _url(server, path, host)
    with pytest.raises(websockets.InvalidStatus) as info:
        async with await connect(url, origin=origin, **kwargs):
            pass
    assert info.value.response.status_code == status, (origin, info.value.response)


def log_line(server: ServerProcess, needle: str) -> str:
    """The server log line containing ``needle`` (waits for it: the log is written by another process)."""
    found: list[str] = []

    def present() -> bool:
        found[:] = [line for line in server.log_text().splitlines() if needle in line]
        return bool(found)

    wait_for(present, 10, message=f"a log line with {needle!r}\n{server.log_tail()}")
    return found[-1]


@pytest.mark.parametrize("path", PATHS)
async def test_same_origin_listed_and_no_origin_are_accepted(site, path):
    await assert_accepted(site, path, f"http://127.0.0.1:{site.port}")  # a page of the site itself
    await assert_accepted(site, path, f"HTTP://127.0.0.1:{site.port}")
    await assert_accepted(site, path, FRONT_END)
    await assert_accepted(site, path, None)  # a CLI, server or mobile client


@pytest.mark.parametrize("path", PATHS)
async def test_foreign_and_look_alike_origins_are_refused(site, path):
    port = site.port
    for origin in [
        "https://evil.example",
        "http://127.0.0.1.evil.example",
        f"http://127.0.0.1.evil.example:{port}",
        f"http://127.0.0.1:{port}@evil.example",
        f"http://127.0.0.1:{port + 1}",  # another port
        "http://127.0.0.1",  # port 80
        f"https://127.0.0.1:{port}",  # another scheme
        f"ws://127.0.0.1:{port}",
        f"http://localhost:{port}",  # another host name, though the same machine
        f"{FRONT_END}.evil.example",
        "null",
    ]:
        await assert_refused(site, path, origin)
    # Not an origin at all (its "port" is not a number). Daphne's WebSocket layer (autobahn)
    # answers 400 before the application sees it; uvicorn hands it over and the policy says 403.
    look_alike = f"http://127.0.0.1:{port}.evil.example"
    await assert_refused(site, path, look_alike, status=400 if site.kind == "daphne" else 403)


async def test_refusal_is_logged_at_warning_with_origin_host_and_setting(site):
    origin = f"https://{uuid.uuid4().hex[:12]}.evil.example"
    await assert_refused(site, PATHS[0], origin)
    line = log_line(site, origin)
    assert "WARNING" in line and "django_broadcasting.auth" in line, line
    assert f"Host '127.0.0.1:{site.port}'" in line and "CORS_ALLOWED_ORIGINS" in line, line


@pytest.mark.parametrize("path", PATHS)
def test_websocket_client_default_handshake_is_accepted(site, path):
    # websocket-client (under pysher and other Python Pusher clients) sends
    # "Origin: http://<host>:<port>" of the URL it opens unless told otherwise.
    import websocket

    ws = websocket.create_connection(site.ws_url(path), timeout=10)
    try:
        assert json.loads(ws.recv())["event"] == ENDPOINTS[path]
    finally:
        ws.close()


@pytest.mark.parametrize("path", PATHS)
async def test_a_host_outside_allowed_hosts_earns_no_same_origin(strict_site, path):
    port = strict_site.port
    # The site's name, as a browser on its pages sends it: accepted.
    await assert_accepted(strict_site, path, f"http://localhost:{port}", host="localhost")
    # The same machine by IP: 127.0.0.1 is not in ALLOWED_HOSTS, so its origin is not the site's.
    await assert_refused(strict_site, path, f"http://127.0.0.1:{port}")
    # A Host the client made up, with the matching Origin (what a DNS-rebinding page would send).
    await assert_refused(strict_site, path, f"http://evil.example:{port}", host="evil.example")
    await assert_accepted(strict_site, path, FRONT_END, host="evil.example")
    await assert_accepted(strict_site, path, None)


async def test_host_outside_allowed_hosts_is_named_in_the_log(strict_site):
    await assert_refused(strict_site, PATHS[0], f"http://127.0.0.1:{strict_site.port}")
    line = log_line(strict_site, f"Host '127.0.0.1:{strict_site.port}' is not in ALLOWED_HOSTS")
    assert "WARNING" in line and f"Origin 'http://127.0.0.1:{strict_site.port}'" in line, line


# -- TLS terminated by the server itself: the page is https, the socket wss ------------------------
@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def tls_site(request, migrated_db_path, tmp_path_factory):
    """A server answering TLS itself; yields (server, TLS port, client SSL context)."""
    require_service(shutil.which("openssl") is not None, "openssl")
    cert, key = make_certificate(tmp_path_factory.mktemp("tls"))
    env = {"CORS_ALLOWED_ORIGINS": FRONT_END, **PUSHER_ENV}
    if request.param == "daphne":  # a TLS endpoint besides the plain one ServerProcess waits for
        tls_port = free_port()
        args = ["-e", f"ssl:{tls_port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"]
    else:
        tls_port, args = None, ["--ssl-keyfile", str(key), "--ssl-certfile", str(cert)]
    context = ssl.create_default_context(cafile=str(cert))
    for server in _module_server(request.param, request, migrated_db_path, tmp_path_factory, env, args=args):
        port = tls_port or server.port
        wait_for(partial(port_open, server.host, port), 10, message=f"TLS port {port}")
        yield server, port, context


@pytest.mark.parametrize("path", PATHS)
async def test_https_pages_connect_over_wss_and_http_ones_do_not(tls_site, path):
    server, port, context = tls_site
    url = f"wss://127.0.0.1:{port}{path}"
    async with await connect(url, origin=f"https://127.0.0.1:{port}", ssl=context) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["event"] == ENDPOINTS[path]
    with pytest.raises(websockets.InvalidStatus) as info:
        async with await connect(url, origin=f"http://127.0.0.1:{port}", ssl=context):
            pass
    assert info.value.response.status_code == 403
    line = log_line(server, f"Origin 'http://127.0.0.1:{port}'")
    assert f"own origin 'https://127.0.0.1:{port}'" in line, line
