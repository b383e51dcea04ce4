"""Two checkouts of the example project on one machine never swallow each other's broadcasts.

Each test copies ``manage.py`` and ``example_project/`` into temporary directories: two
checkouts with the same settings module and the same ``SECRET_KEY``, started as a user would
(``manage.py runserver``, ``manage.py broadcast websocket``), with no host or port setting
anywhere. ``manage.py broadcast test`` from each checkout must reach its own server only (a
WebSocket subscriber on the other server receives nothing), say which server accepted it, and
fail with one clear line when the recorded server is gone and another project's server took its
port.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.integration.wsclient import connect, expect
from tests.servers import REPO_ROOT, free_port, port_open, server_env

pytestmark = pytest.mark.integration

SEED_LINES = ["🚀 Testing broadcast to channel: general", "✅ Broadcast test completed successfully"]


class Server:
    """A server a checkout started (``runserver`` or ``broadcast websocket``), stopped by its own PID."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def kill(self) -> None:
        """SIGKILL the server's process group (runserver's reloader and its child), as a crash would."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
        wait_until(lambda: not port_open("127.0.0.1", self.port), 10, f"port {self.port} to close")


class Checkout:
    """``manage.py`` and ``example_project/`` copied into ``root``: another clone of the same project."""

    def __init__(self, root: Path, db_path: Path) -> None:
        self.root = root
        self.db_path = db_path
        self.servers: list[Server] = []
        root.mkdir(parents=True)
        shutil.copy2(REPO_ROOT / "manage.py", root / "manage.py")
        shutil.copytree(
            REPO_ROOT / "example_project",
            root / "example_project",
            ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"),
        )

    @property
    def project(self) -> str:
        return str(self.root.resolve())

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # No BROADCAST_* at all (server_env drops them), and the checkout's own code first on sys.path:
        # django_broadcasting comes from the installed package, example_project from this copy.
        env = server_env({"DATABASE_PATH": str(self.db_path), **(extra or {})})
        env.pop("PYTHONPATH", None)
        return env

    def manage(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=self.root, env=self.env(env), capture_output=True,
            text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    async def broadcast(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """``manage.py broadcast <args>`` in a thread, so the test's WebSocket clients keep reading."""
        return await asyncio.to_thread(self.manage, "broadcast", *args, env=env)

    def serve(self, how: str, port: int | None = None, env: Mapping[str, str] | None = None) -> Server:
        """Start ``runserver`` (daphne, with its autoreloader) or ``broadcast websocket --server uvicorn``."""
        port = port or free_port()
        if how == "runserver":
            args = ["runserver", f"127.0.0.1:{port}"]
        else:
            args = ["broadcast", "websocket", "--port", str(port), "--server", how, "--skip-checks"]
        log = self.root / f"{how}-{port}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *args], cwd=self.root, env=self.env(env), stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        server = Server(process, port, log)
        self.servers.append(server)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{how} exited with {process.returncode}:\n{log.read_text()}")
            return port_open("127.0.0.1", port)

        wait_until(ready, 60, f"{how} of {self.root} on port {port}")
        return server

    def record_path(self) -> Path:
        code = "from django_broadcasting.discovery import record_path; print(record_path())"
        return Path(ok(self.manage("shell", "-c", code)).strip().splitlines()[-1])

    def stop(self) -> None:
        for server in self.servers:
            server.kill()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, f"expected a failure, got exit 0:\n{result.stdout}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return lines[0]


def accepted_line(out: str) -> str:
    lines = out.splitlines()
    assert lines[:2] == SEED_LINES, out  # the documented lines stay as they are
    assert len(lines) == 3 and lines[2].startswith("  • Accepted by the server at "), out
    return lines[2]


async def received_nothing(ws: Any) -> None:
    """Nothing was delivered to ``ws`` before now: the next frame after a ping is its pong."""
    await ws.send(json.dumps({"action": "ping"}))
    frame = await expect(ws, "pong", timeout=10)
    assert frame["event"] == "pong"
    await ws.send(json.dumps({"action": "ping"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["event"] == "pong"


@pytest.fixture
def checkouts(tmp_path: Path, migrated_db_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple]:
    made = [Checkout(tmp_path / name / "shop", migrated_db_path) for name in ("alice", "bob")]
    try:
        yield tuple(made)
    finally:
        for checkout in made:
            checkout.stop()
        if any(getattr(getattr(request.node, f"rep_{w}", None), "failed", False) for w in ("setup", "call")):
            for checkout in made:
                for server in checkout.servers:
                    print(f"--- {server.log} ---\n{server.log.read_text(errors='replace')[-4000:]}")
        for checkout in made:  # the records of these temporary projects
            for path in Path(tempfile.gettempdir()).glob("django-broadcasting-*.json"):
                try:
                    if json.loads(path.read_text()).get("project") == checkout.project:
                        path.unlink()
                except (OSError, ValueError):
                    pass


async def test_each_checkout_reaches_its_own_server_only(checkouts):
    a, b = checkouts
    server_a = a.serve("runserver")  # daphne's runserver, autoreloader and all
    server_b = b.serve("uvicorn")
    assert a.project != b.project
    async with (
        await connect(server_a.ws_url("/ws?channel=general")) as ws_a,
        await connect(server_b.ws_url("/ws?channel=general")) as ws_b,
    ):
        # Connecting is each server's first request: each records its address for its own checkout.
        await expect(ws_a, "subscribed")
        await expect(ws_b, "subscribed")

        out = ok(await a.broadcast("test", "--message", "from alice"))
        assert (await expect(ws_a, "test"))["data"]["message"] == "from alice"
        await received_nothing(ws_b)
        line = accepted_line(out)
        assert f"127.0.0.1:{server_a.port} " in line and f"project {a.project})" in line, line

        out = ok(await b.broadcast("test", "--message", "from bob"))
        assert (await expect(ws_b, "test"))["data"]["message"] == "from bob"
        await received_nothing(ws_a)
        line = accepted_line(out)
        assert f"127.0.0.1:{server_b.port} " in line and f"project {b.project})" in line, line
        pid = line.split("(node ", 1)[1].split(",", 1)[0].rsplit(":", 1)[1]
        assert int(pid) == server_b.process.pid  # `broadcast websocket` serves in its own process

        # Pointing one checkout at the other's server explicitly is refused before delivery.
        wrong = one_line_error(
            await a.broadcast("test", env={"BROADCAST_WEBSOCKET_PORT": str(server_b.port)})
        )
        assert (
            "serves another project" in wrong and b.project in wrong and "BROADCAST_WEBSOCKET_PORT" in wrong
        )
        await received_nothing(ws_b)


async def test_a_stale_record_is_noticed_and_another_projects_server_refuses(checkouts):
    a, b = checkouts
    port = free_port()
    server_a = a.serve("uvicorn", port)
    async with await connect(server_a.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")  # alice's server records itself
    record = a.record_path()
    assert json.loads(record.read_text())["port"] == port
    server_a.kill()  # kill -9: no chance to tidy up; the record stays behind

    server_b = b.serve("uvicorn", port)  # bob's server takes the port
    async with await connect(server_b.ws_url("/ws?channel=general")) as ws_b:
        await expect(ws_b, "subscribed")
        line = one_line_error(await a.broadcast("test"))
        assert line.startswith("CommandError: ❌ Broadcast test failed: "), line
        assert f"The broadcast server at 127.0.0.1:{port} serves another project" in line, line
        assert b.project in line and "is gone" in line and "BROADCAST_WEBSOCKET_PORT" in line, line
        await received_nothing(ws_b)  # refused before delivery
    assert not record.exists()  # noticed and removed

    # With the record gone, the next attempt does not guess: one line that says what to set.
    line = one_line_error(await a.broadcast("ping", "--count", "1"))
    assert "Ping #1 failed" in line and "BROADCAST_WEBSOCKET_PORT" in line, line


async def test_a_restarted_server_on_the_recorded_port_is_accepted_and_re_records(checkouts):
    """What runserver's autoreload does: a new process of the same project on the same port."""
    a, _ = checkouts
    port = free_port()
    first = a.serve("uvicorn", port)
    async with await connect(first.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
    first.kill()
    second = a.serve("uvicorn", port)  # no request yet: the record still names the dead process
    line = accepted_line(ok(await a.broadcast("test")))
    assert f"node {socket.gethostname()}:{second.process.pid}, project {a.project})" in line, line
    record = json.loads(a.record_path().read_text())
    assert (record["pid"], record["port"]) == (second.process.pid, port)  # it re-recorded itself


async def test_one_project_at_two_paths_shares_a_name(checkouts):
    """A release directory per deploy: the same BROADCAST_PROJECT makes two paths one project."""
    a, b = checkouts
    server = b.serve("uvicorn", env={"BROADCAST_PROJECT": "shop"})
    explicit = {"BROADCAST_WEBSOCKET_PORT": str(server.port), "BROADCAST_PROJECT": "shop"}
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        line = accepted_line(ok(await a.broadcast("test", "--message", "same", env=explicit)))
        assert line.endswith("project shop)") and f":{server.port} " in line, line
        assert (await expect(ws, "test"))["data"]["message"] == "same"


@pytest.mark.parametrize("how", ["runserver", "uvicorn"])
async def test_a_server_is_found_before_its_first_request(checkouts, how):
    a, _ = checkouts
    record = a.record_path()
    server = a.serve(how)
    wait_until(record.exists, 30, "the server to record its address")  # no request has reached it
    line = accepted_line(ok(await a.broadcast("test")))
    assert f"the server at 127.0.0.1:{server.port} " in line and a.project in line, line


@pytest.mark.parametrize(
    "args",
    [["test"], ["ping", "--count", "1"], ["notify:user", "5", "Hi", "There"], ["system:alert", "info", "Up"]],
    ids=lambda args: args[0],
)
async def test_no_server_of_this_project_is_one_line_that_says_what_to_set(checkouts, args):
    a, _ = checkouts  # never served: no record; 127.0.0.1:8080 is not this project's server
    line = one_line_error(await a.broadcast(*args))
    assert "failed: " in line and "BROADCAST_WEBSOCKET_PORT" in line, line
