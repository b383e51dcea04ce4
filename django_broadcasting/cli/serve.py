"""``websocket``: serve the broadcasting ASGI application with daphne (default) or uvicorn.

The application is ``django_broadcasting.asgi:application`` under the current settings
(``--app`` picks another, e.g. a project's own ``asgi.py``). Server keepalive pings follow
``PING_INTERVAL`` (0 turns them off); ``COMPRESSION`` turns on permessage-deflate under
uvicorn (daphne has no WebSocket compression). Under uvicorn a client message larger than
``ws_max_size()`` (four times ``MAX_FRAME_SIZE``) closes the socket with 1009 before it is buffered.
Ctrl-C stops the server gracefully (clients get close code 1012 and reconnect) with exit status 0.

Under uvicorn the WebSocket protocol is this project's lean front (``--ws front``,
``django_broadcasting.server.front.uvicorn:WebSocketProtocol``) unless ``--ws`` names one of
uvicorn's (``websockets-sansio``, ``websockets``, ``wsproto``) or ``COMPRESSION`` is on: the front
negotiates no permessage-deflate, so compression runs on ``websockets-sansio``.

Bound to an address other than loopback, it says at start-up that it expects a reverse proxy in
front: neither daphne nor uvicorn has a timeout for a request whose headers never finish (a
slowloris client keeps such a socket open for ever), so the proxy must cut those
(docs/deployment.md).
"""

from __future__ import annotations

import importlib
import ipaddress
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ..conf import broadcasting_settings
from .base import say

DEFAULT_APP = "django_broadcasting.asgi:application"
SERVERS = ("daphne", "uvicorn")
#: ``--ws`` choices: this project's uvicorn WebSocket protocol, or one of uvicorn's own.
FRONT_WS = "django_broadcasting.server.front.uvicorn:WebSocketProtocol"
WS_PROTOCOLS = {
    "front": FRONT_WS,
    "websockets-sansio": "websockets-sansio",
    "websockets": "websockets",
    "wsproto": "wsproto",
}
#: Daphne pings every ``ping_interval`` seconds unconditionally: "off" is an interval no socket outlives.
NO_PING = 10**9


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "websocket",
        help="Start the WebSocket server (daphne or uvicorn) for this project.",
        description=f"Serve {DEFAULT_APP} (HTTP API and WebSockets) with the current settings.",
    )
    parser.add_argument(
        "--port",
        type=int,
        metavar="PORT",
        help="Port to listen on (default: BROADCAST_WEBSOCKET_PORT, 8080).",
    )
    parser.add_argument(
        "--host", metavar="HOST", help="Address to bind (default: BROADCAST_WEBSOCKET_HOST, 127.0.0.1)."
    )
    parser.add_argument(
        "--server", choices=SERVERS, default="daphne", help="ASGI server to run (default: daphne)."
    )
    parser.add_argument(
        "--ws",
        choices=tuple(WS_PROTOCOLS),
        default=None,
        help="WebSocket protocol under uvicorn: 'front' (this project's, the default) or one of uvicorn's "
        "(the default is websockets-sansio when COMPRESSION is on).",
    )
    parser.add_argument(
        "--app",
        default=DEFAULT_APP,
        metavar="MODULE:ATTR",
        help=f"ASGI application (default: {DEFAULT_APP}).",
    )
    parser.add_argument(
        "--skip-checks", action="store_true", help="Do not run Django's system checks before serving."
    )
    parser.set_defaults(handler=handle_websocket)


def _check_port(host: str, port: int) -> None:
    # Fail with one clear line before the server starts and logs a traceback about it.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CommandError(f"❌ Cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _check_app(app: str) -> None:
    # Import it now: a typo is one clear line here, not a traceback from inside the server.
    module_name, _, attribute = app.partition(":")
    if not module_name or not attribute:
        raise CommandError(f"❌ --app must look like 'package.module:attribute' (got {app!r}).")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"❌ Cannot import the ASGI application {app!r}: {exc}") from None
    if not callable(getattr(module, attribute, None)):
        raise CommandError(f"❌ {module_name} has no ASGI application named {attribute!r}.")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


PROXY_NOTICE = (
    "  ⚠ Listening on {host}, not a loopback address: this server expects a reverse proxy in front "
    "(nginx, see docs/deployment.md). Neither daphne nor uvicorn times out a request whose headers "
    "never finish; the proxy cuts those slow requests."
)


def handle_websocket(command: BaseCommand, options: dict[str, Any]) -> None:
    port = options.get("port")
    port = broadcasting_settings.WEBSOCKET_PORT if port is None else port
    if not 0 < int(port) < 65536:
        raise CommandError(f"❌ --port must be between 1 and 65535 (got {port}).")
    host = options.get("host") or broadcasting_settings.WEBSOCKET_HOST or "127.0.0.1"
    server = options.get("server") or "daphne"
    if server not in SERVERS:
        raise CommandError(f"❌ Unknown --server {server!r}: use daphne or uvicorn.")
    app = options.get("app") or DEFAULT_APP
    ws = ws_protocol(options.get("ws"))
    if options.get("ws") and server != "uvicorn":
        raise CommandError(
            "❌ --ws applies to --server uvicorn only (daphne has its own WebSocket protocol)."
        )
    if not options.get("skip_checks"):
        command.check(display_num_errors=False)
    _check_port(host, int(port))
    _check_app(app)
    say(command, f"🌐 Starting WebSocket server on port {port}")
    say(command, f"WebSocket server starting on port {port}")
    say(command, f"  • {server} serving {app} at ws://{host}:{port}/ws (Ctrl-C to stop)")
    if server == "uvicorn":
        say(command, f"  • WebSocket protocol: {ws_label(ws)}")
        if ws == FRONT_WS and broadcasting_settings.COMPRESSION:
            say(
                command,
                "  ⚠ COMPRESSION is on, but this protocol negotiates no permessage-deflate: "
                "use --ws websockets-sansio for compressed sockets.",
            )
    if not _loopback(host):
        say(command, PROXY_NOTICE.format(host=host))
    if server == "uvicorn":
        _run_uvicorn(app, host, int(port), int(options.get("verbosity", 1)), ws)
    else:
        _run_daphne(app, host, int(port), int(options.get("verbosity", 1)))


def _run_daphne(app: str, host: str, port: int, verbosity: int) -> None:
    try:
        from daphne.cli import CommandLineInterface
    except ImportError:
        raise CommandError("❌ daphne is not installed: pip install daphne") from None
    ping = broadcasting_settings.PING_INTERVAL
    interval = max(1, round(ping)) if ping else NO_PING
    argv = [
        "-b", host, "-p", str(port),
        "--ping-interval", str(interval),
        "--ping-timeout", str(max(30, interval) if ping else NO_PING),
        # Daphne closes every WebSocket after a day by default; a broadcast socket lives on.
        "--websocket_timeout", "-1",
        "-v", str(min(max(verbosity, 0), 3)),
        app,
    ]  # fmt: skip
    try:
        CommandLineInterface().run(argv)
    except KeyboardInterrupt:
        pass


def ws_max_size() -> int:
    """Return the WebSocket message size, in bytes, past which the server itself drops the socket.

    ``MAX_FRAME_SIZE`` is checked by the application in characters (a larger frame gets error
    4009 and the socket stays open); no frame within it takes more than four bytes per character
    in UTF-8, so anything larger is closed by uvicorn (1009) before it is buffered whole.
    """
    return 4 * broadcasting_settings.MAX_FRAME_SIZE


def ws_protocol(choice: str | None) -> str:
    """Return uvicorn's ``ws`` for ``--ws`` (None: the front, or websockets-sansio with ``COMPRESSION``)."""
    if choice is None:
        return "websockets-sansio" if broadcasting_settings.COMPRESSION else FRONT_WS
    try:
        return WS_PROTOCOLS[choice]
    except KeyError:
        raise CommandError(f"❌ Unknown --ws {choice!r}: use {', '.join(WS_PROTOCOLS)}.") from None


def ws_label(ws: str) -> str:
    if ws == FRONT_WS:
        return f"{FRONT_WS} (this project's; no permessage-deflate)"
    deflate = " with permessage-deflate" if broadcasting_settings.COMPRESSION else ""
    return f"uvicorn's {ws}{deflate}"


def _run_uvicorn(app: str, host: str, port: int, verbosity: int, ws: str = FRONT_WS) -> None:
    try:
        import uvicorn
    except ImportError:
        raise CommandError(
            "❌ uvicorn is not installed: pip install 'django-broadcasting[uvicorn]'"
        ) from None
    ping = broadcasting_settings.PING_INTERVAL
    levels = {0: "warning", 1: "info", 2: "debug", 3: "trace"}
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            lifespan="auto",
            ws=ws,  # LifespanApp starts the hub; a failed start still stops uvicorn
            ws_ping_interval=ping or None,
            ws_ping_timeout=max(20.0, ping) if ping else None,
            ws_per_message_deflate=broadcasting_settings.COMPRESSION,
            # uvicorn buffers a frame up to 16 MiB before the application sees it; cut at the largest
            # frame the application accepts (MAX_FRAME_SIZE characters, 4 bytes each at most).
            ws_max_size=ws_max_size(),
            log_level=levels.get(min(max(verbosity, 0), 3), "info"),
        )
    except KeyboardInterrupt:
        pass
