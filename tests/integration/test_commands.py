"""``manage.py broadcast <subcommand>`` run as separate processes against a real daphne server.

What a WebSocket subscriber receives (``test``, ``notify:user``, ``system:alert``, ``ping``),
what is printed (``stats``, ``channels``, ``monitor``), the ``websocket`` server itself
(daphne and uvicorn), and the failure paths: server down, bad arguments, port in use; each
one clear line on stderr and a non-zero exit status.

The helpers at the top are shared with ``test_commands_redis.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import pytest

from tests.integration.wsclient import closed_with, connect, expect, make_token, subscribe
from tests.servers import REPO_ROOT, free_port, port_open, server_env, wait_for

pytestmark = pytest.mark.integration


# -- running the command ------------------------------------------------------------------------------
def cli_env(server: Any = None, **extra: str) -> dict[str, str]:
    """The command's environment: where the server is (plus the layer/driver it uses)."""
    env: dict[str, str] = {}
    if server is not None:
        env["BROADCAST_WEBSOCKET_HOST"] = server.host
        env["BROADCAST_WEBSOCKET_PORT"] = str(server.port)
        for key, value in server.env.items():
            if key.startswith("BROADCAST_") and key not in env:
                env[key] = value
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, str(REPO_ROOT / "manage.py"), "broadcast", *args]


def broadcast(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run ``manage.py broadcast <args>`` to completion; stdout/stderr as text."""
    return subprocess.run(
        command(*args), cwd=REPO_ROOT, env=server_env(env), capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


async def abroadcast(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """``broadcast`` in a thread, so WebSocket clients of the test keep reading meanwhile."""
    return await asyncio.to_thread(broadcast, *args, env=env, timeout=timeout)


def _default_sigint() -> None:
    # A suite started in the background by a non-interactive shell inherits SIGINT ignored;
    # the command must see Ctrl-C as a terminal would send it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``manage.py broadcast <args>`` in the background, in its own process group."""
    return subprocess.Popen(
        command(*args), cwd=REPO_ROOT, env=server_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True, preexec_fn=_default_sigint,
    )  # fmt: skip


def stop(process: subprocess.Popen) -> None:
    """Make sure a background command is gone (its group, by its own PID)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.communicate(timeout=10)


def ok(result: subprocess.CompletedProcess) -> str:
    """The stdout of a run that must have succeeded (its output in the failure message)."""
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a run that must have failed cleanly (no traceback)."""
    assert result.returncode != 0, f"expected a failure, got exit 0\n{result.stdout}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{result.stderr}"
    return lines[0]


@pytest.fixture
def server(server_factory):
    return server_factory("daphne")


# -- --help -----------------------------------------------------------------------------------------------
SUBCOMMAND_OPTIONS = {
    "test": ["--channel", "--message"],
    "websocket": ["--port", "--host", "--server"],
    "stats": ["--url", "--json"],
    "ping": ["--channel", "--interval", "--count"],
    "channels": ["--url", "--json"],
    "notify:user": ["USER_ID", "TITLE", "MESSAGE", "--action-url"],
    "system:alert": ["LEVEL", "MESSAGE", "--action-required"],
    "monitor": ["--duration", "--interval"],
}


def test_help_lists_every_subcommand():
    out = ok(broadcast("--help"))
    for name in SUBCOMMAND_OPTIONS:
        assert re.search(rf"^\s+{re.escape(name)}\s", out, re.M), f"{name} missing from --help:\n{out}"


@pytest.mark.parametrize("name", list(SUBCOMMAND_OPTIONS))
def test_help_documents_every_option(name):
    out = ok(broadcast(name, "--help"))
    for option in SUBCOMMAND_OPTIONS[name]:
        assert option in out, f"{option} missing from '{name} --help':\n{out}"


# -- publishing: what a subscriber receives -------------------------------------------------------------------
async def test_test_broadcasts_hello_world_to_general(server):
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        out = ok(await abroadcast("test", env=cli_env(server)))
        frame = await expect(ws, "test")
    lines = out.splitlines()
    assert lines[:2] == [
        "🚀 Testing broadcast to channel: general",
        "✅ Broadcast test completed successfully",
    ]
    # ... and which server accepted it (its address, node and project).
    assert len(lines) == 3 and lines[2].startswith(
        f"  • Accepted by the server at {server.host}:{server.port} "
    )
    assert f"project {REPO_ROOT})" in lines[2], lines[2]
    assert frame["channel"] == "general" and frame["data"]["message"] == "Hello World"


async def test_test_with_channel_and_message(server):
    async with await connect(server.ws_url("/ws?channel=announcements")) as ws:
        await expect(ws, "subscribed")
        out = ok(await abroadcast("test", "--channel", "announcements", "--message", "Custom test message",
                                  env=cli_env(server)))  # fmt: skip
        frame = await expect(ws, "test")
    assert "🚀 Testing broadcast to channel: announcements" in out
    assert frame["channel"] == "announcements" and frame["data"]["message"] == "Custom test message"


async def test_notify_user_reaches_the_users_private_channel(server):
    token = make_token(123)
    async with await connect(server.ws_url(f"/ws?auth_token={token}")) as ws:
        await expect(ws, "connected")
        assert (await subscribe(ws, "user.123"))["event"] == "subscribed"
        out = ok(await abroadcast("notify:user", "123", "Welcome", "Registration successful",
                                  "--action-url", "/dashboard", env=cli_env(server)))  # fmt: skip
        frame = await expect(ws, "notification")
    assert frame["channel"] == "user.123"
    data = frame["data"]
    assert (data["title"], data["message"], data["action_url"]) == (
        "Welcome",
        "Registration successful",
        "/dashboard",
    )
    assert data["timestamp"]
    assert "✅" in out and "user.123" in out


async def test_system_alert_reaches_admins(server):
    token = make_token(1, roles=["admin"])
    async with await connect(server.ws_url(f"/ws?auth_token={token}")) as ws:
        await expect(ws, "connected")
        assert (await subscribe(ws, "admin"))["event"] == "subscribed"
        out = ok(await abroadcast("system:alert", "warning", "Maintenance starting soon", "--action-required",
                                  env=cli_env(server)))  # fmt: skip
        frame = await expect(ws, "system_alert")
    assert frame["channel"] == "admin"
    assert frame["data"]["level"] == "warning"
    assert frame["data"]["message"] == "Maintenance starting soon"
    assert frame["data"]["action_required"] is True
    assert "warning" in out and "✅" in out


async def test_ping_with_count_sends_that_many_pings(server):
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        started = time.monotonic()
        out = ok(await abroadcast("ping", "--count", "2", "--interval", "0.2", env=cli_env(server)))
        first = await expect(ws, "ping")
        second = await expect(ws, "ping")
    assert [first["data"]["sequence"], second["data"]["sequence"]] == [1, 2]
    assert first["channel"] == "general"
    assert time.monotonic() - started >= 0.2  # the interval was honoured
    assert out.count("Ping #") == 2 and "✅ Sent 2 pings" in out


async def test_ping_runs_until_ctrl_c_and_exits_0(server):
    async with await connect(server.ws_url("/ws?channel=pings")) as ws:
        await expect(ws, "subscribed")
        process = popen("ping", "--channel", "pings", "--interval", "0.2", env=cli_env(server))
        try:
            await expect(ws, "ping", timeout=30)
            await expect(ws, "ping", timeout=10)  # still going: no --count
            process.send_signal(signal.SIGINT)
            out, err = await asyncio.to_thread(process.communicate, timeout=20)
        finally:
            stop(process)
    assert process.returncode == 0, err
    assert "Stopped after" in out and "Traceback" not in err


async def test_call_command_with_keyword_options(server, settings, monkeypatch):
    """In-process, as a health-check script or a test would call it (options as keywords)."""
    from io import StringIO

    from asgiref.sync import sync_to_async
    from django.core.management import call_command

    from django_broadcasting.server.hub import get_hub

    monkeypatch.setattr(get_hub(), "serving", False)  # this process is a client, not the server
    settings.BROADCASTING = {"WEBSOCKET_HOST": server.host, "WEBSOCKET_PORT": server.port}
    out = StringIO()
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        await sync_to_async(call_command)("broadcast", "test", channel="general", message="kw", stdout=out)
        await sync_to_async(call_command)("broadcast", "ping", count=1, interval=0.1, stdout=out)
        assert (await expect(ws, "test"))["data"]["message"] == "kw"
        assert (await expect(ws, "ping"))["data"]["sequence"] == 1
        await sync_to_async(call_command)("broadcast", "channels", stdout=out)
    assert "✅ Broadcast test completed successfully" in out.getvalue()
    assert "  • general: 1 connections" in out.getvalue()


# -- inspecting: what is printed ----------------------------------------------------------------------
async def test_stats_prints_channels_connections_and_configuration(server):
    async with (
        await connect(server.ws_url("/ws?channel=general")) as a,
        await connect(server.ws_url("/ws?channel=general")) as b,
        await connect(server.ws_url("/ws?channel=announcements")) as c,
    ):
        for ws in (a, b, c):
            await expect(ws, "subscribed")
        out = ok(await abroadcast("stats", env=cli_env(server)))
    lines = out.splitlines()
    assert lines[:3] == [
        "📊 Broadcasting System Statistics",
        "================================",
        "📡 WebSocket Channels:",
    ]
    assert "  • general: 2 connections" in lines
    assert "  • announcements: 1 connections" in lines
    assert "🔧 Broadcast Configuration:" in lines
    assert "  • Default Driver: Available" in lines
    assert "  • Total Active Channels: 2" in lines
    assert "  • Open: 3" in lines
    assert any(line.startswith("🖥️  Nodes: 1") for line in lines)


async def test_stats_json(server):
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        document = json.loads(ok(await abroadcast("stats", "--json", env=cli_env(server))))
    assert document["channels"] == {"general": 1} and document["connections"] == 1


async def test_channels_lists_active_channels(server):
    assert ok(await abroadcast("channels", env=cli_env(server))).strip() == "📡 No active channels"
    async with (
        await connect(server.ws_url("/ws?channel=general")) as a,
        await connect(server.ws_url("/ws?channel=public")) as b,
    ):
        await expect(a, "subscribed")
        await expect(b, "subscribed")
        out = ok(await abroadcast("channels", env=cli_env(server)))
    assert out.splitlines() == [
        "📡 Active Channels: 2",
        "  • general: 1 connections",
        "  • public: 1 connections",
    ]


async def test_monitor_prints_plain_lines_when_not_a_terminal(server):
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        started = time.monotonic()
        out = ok(await abroadcast("monitor", "--duration", "2", env=cli_env(server)))
        took = time.monotonic() - started
    lines = out.splitlines()
    ticks = [line for line in lines if line.startswith("[")]
    assert lines[0].startswith("📈 Monitoring ")
    assert len(ticks) >= 2, out
    assert all("connections=1" in t and "channels=1" in t and "top=general:1" in t for t in ticks), out
    assert all("in=" in t and "out=" in t for t in ticks)
    assert "\x1b[" not in out  # no terminal control codes in a pipe
    assert lines[-1].startswith("✅ Monitoring finished")
    assert took >= 2


async def test_monitor_redraws_in_place_on_a_terminal(server):
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        out = await asyncio.to_thread(run_on_a_terminal, "monitor", "--duration", "1", "--interval", "0.5",
                                      env=cli_env(server))  # fmt: skip
    assert out.count("\x1b[H\x1b[2J") >= 2, out  # cleared and redrawn
    assert "📈 Broadcasting Monitor" in out and "🔌 Connections: 1" in out and "general: 1 connections" in out
    assert "✅ Monitoring finished" in out


def run_on_a_terminal(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> str:
    """Run the command with its stdout on a pseudo-terminal; what it wrote there."""
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen(
        command(*args), cwd=REPO_ROOT, env=server_env(env), stdout=slave, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        process.wait(timeout)
    finally:
        os.close(master)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, process.stderr.read()
    return b"".join(chunks).decode(errors="replace")


# -- the server ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_websocket_serves_the_app_and_stops_on_ctrl_c(kind, migrated_db_path):
    port = free_port()
    env = {"BROADCAST_WEBSOCKET_PORT": str(port), "DATABASE_PATH": str(migrated_db_path)}
    process = popen("websocket", "--port", str(port), "--server", kind, env=env)
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: port_open("127.0.0.1", port) or process.poll() is not None,
            30,
            0.05,
            "the server",
        )
        assert process.poll() is None, process.communicate()
        async with await connect(f"ws://127.0.0.1:{port}/ws?channel=general") as ws:
            await expect(ws, "subscribed")
            ok(await abroadcast("test", env=env))
            assert (await expect(ws, "test"))["data"]["message"] == "Hello World"
            process.send_signal(signal.SIGINT)
            assert await closed_with(ws, 20) == 1012  # clients are told to reconnect
        out, err = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        stop(process)
    assert process.returncode == 0, err
    assert f"🌐 Starting WebSocket server on port {port}" in out.splitlines()
    assert "reverse proxy" not in out  # loopback: nobody else can reach it


async def test_websocket_on_a_public_address_says_it_expects_a_proxy(migrated_db_path):
    port = free_port("0.0.0.0")
    env = {"DATABASE_PATH": str(migrated_db_path)}
    process = popen("websocket", "--host", "0.0.0.0", "--port", str(port), "--skip-checks", env=env)
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: port_open("127.0.0.1", port) or process.poll() is not None,
            30,
            0.05,
            "the server",
        )
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        stop(process)
    assert process.returncode == 0, err
    [notice] = [line for line in out.splitlines() if "reverse proxy" in line]
    assert "Listening on 0.0.0.0, not a loopback address" in notice
    assert "headers never finish" in notice and "docs/deployment.md" in notice


async def test_websocket_compression_follows_the_setting_under_uvicorn(migrated_db_path):
    port = free_port()
    env = {
        "BROADCAST_WEBSOCKET_PORT": str(port),
        "BROADCAST_COMPRESSION": "true",
        "DATABASE_PATH": str(migrated_db_path),
    }
    process = popen("websocket", "--port", str(port), "--server", "uvicorn", env=env)
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: port_open("127.0.0.1", port) or process.poll() is not None,
            30,
            0.05,
            "the server",
        )
        async with await connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await expect(ws, "connected")
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
    finally:
        stop(process)
    assert "permessage-deflate" in extensions


@pytest.mark.parametrize(
    ("ws_args", "named", "extensions_offered"),
    [
        ((), "django_broadcasting.server.front.uvicorn:WebSocketProtocol", False),
        (("--ws", "websockets-sansio"), "uvicorn's websockets-sansio", False),
    ],
    ids=["front-default", "websockets-sansio"],
)
async def test_websocket_under_uvicorn_says_which_websocket_protocol_serves(
    migrated_db_path, ws_args, named, extensions_offered
):
    port = free_port()
    env = {"BROADCAST_WEBSOCKET_PORT": str(port), "DATABASE_PATH": str(migrated_db_path)}
    process = popen("websocket", "--port", str(port), "--server", "uvicorn", *ws_args, env=env)
    try:
        await asyncio.to_thread(
            wait_for,
            lambda: port_open("127.0.0.1", port) or process.poll() is not None,
            30,
            0.05,
            "the server",
        )
        async with await connect(f"ws://127.0.0.1:{port}/ws") as ws:  # offers permessage-deflate
            await expect(ws, "connected")
            assert bool(ws.response.headers.get("Sec-WebSocket-Extensions")) is extensions_offered
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        stop(process)
    [line] = [line for line in out.splitlines() if "WebSocket protocol:" in line]
    assert named in line


def test_websocket_ws_option_is_for_uvicorn_only():
    result = broadcast("websocket", "--port", str(free_port()), "--ws", "wsproto", "--skip-checks")
    assert "--ws applies to --server uvicorn only" in one_line_error(result)


def test_websocket_unknown_app_is_one_line():
    result = broadcast(
        "websocket", "--port", str(free_port()), "--app", "nowhere.asgi:application", "--skip-checks"
    )
    assert "Cannot import the ASGI application" in one_line_error(result)


def test_websocket_port_in_use_is_one_line(server):
    result = broadcast(
        "websocket", "--port", str(server.port), "--skip-checks", env=cli_env(server), timeout=30
    )
    line = one_line_error(result)
    assert str(server.port) in line and "Cannot listen" in line


# -- failures: one line, non-zero exit -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["test"],
        ["stats"],
        ["channels"],
        ["monitor", "--duration", "1"],
        ["ping", "--count", "1", "--interval", "0.1"],
        ["notify:user", "5", "Hi", "There"],
        ["system:alert", "info", "Up"],
    ],
    ids=lambda args: args[0],
)
def test_server_down_is_one_clear_line(args):
    port = free_port()  # nothing listens there
    line = one_line_error(broadcast(*args, env={"BROADCAST_WEBSOCKET_PORT": str(port)}))
    assert "Cannot reach the broadcast server" in line and str(port) in line, line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["system:alert", "bogus", "Something"], "Unknown alert level"),
        (["system:alert", "warning", ""], "MESSAGE must not be empty"),
        (["test", "--message", ""], "message must not be empty"),
        (["notify:user", "5", "Title", "  "], "MESSAGE must not be empty"),
        (["ping", "--interval", "0"], "--interval must be greater than 0"),
        (["ping", "--interval", "-1"], "--interval must be greater than 0"),
        (["ping", "--interval", "soon"], "invalid float value"),
        (["ping", "--count", "0"], "--count must be greater than 0"),
        (["monitor", "--duration", "0"], "--duration must be greater than 0"),
        (["monitor", "--interval", "-2"], "--interval must be greater than 0"),
        (["test", "--channel", "bad channel!"], "Broadcast test failed"),
        (["notify:user", "5"], "required"),
        (["websocket", "--server", "gunicorn"], "invalid choice"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_bad_arguments_are_one_clear_line(args, expected):
    port = free_port()
    line = one_line_error(broadcast(*args, env={"BROADCAST_WEBSOCKET_PORT": str(port)}))
    assert expected in line, line
