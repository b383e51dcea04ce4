"""The deployment of ``deploy/``, run for real: Debian's nginx with TLS in front of two uvicorn nodes on Redis.

The files are used as shipped, with only what must differ on a test machine substituted (each
substitution must match exactly once, so an edit of a file that breaks the test setup fails here):

- ``deploy/nginx/django-broadcasting.conf``: listen ports, certificate paths, the nodes include;
- ``deploy/nginx/nodes.conf``: the node ports;
- ``deploy/systemd/django-broadcasting@.service``: its uvicorn flags start the nodes;
- ``deploy/broadcasting.env``: the nodes' environment (Redis URL and key prefix, settings module,
  hosts replaced).

nginx runs as this test's own process (``-p`` temp prefix, ``daemon off``) on free ports and is
stopped by its PID. Checked through the proxy: ``wss://`` native and Pusher-protocol clients, the
Origin check, and a rolling restart (one node at a time) during which clients reconnect and recover
every message from Redis history.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import ssl
import subprocess
from pathlib import Path

import pytest
import websockets

from tests.integration import pusher_client
from tests.integration.redis_support import make_certificate, parse_results, run_publisher, start_publisher
from tests.integration.wsclient import connect, expect, recv
from tests.servers import REPO_ROOT, free_port, port_open, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEPLOY = REPO_ROOT / "deploy"
SITE = DEPLOY / "nginx" / "django-broadcasting.conf"
NODES = DEPLOY / "nginx" / "nodes.conf"
UNIT = DEPLOY / "systemd" / "django-broadcasting@.service"
ENV_FILE = DEPLOY / "broadcasting.env"
ALLOWED_ORIGIN = "https://www.example.com"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``KEY=value`` lines, as systemd's EnvironmentFile= and compose's env_file: read them."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=value: {line!r}"
            env[key.strip()] = value.strip()
    return env


def unit_exec_start(path: Path = UNIT) -> list[str]:
    lines = [line for line in path.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1
    return shlex.split(lines[0].removeprefix("ExecStart="))


def uvicorn_flags(argv: list[str]) -> list[str]:
    """The unit's uvicorn flags without the binary, the app, --host and --port (the test sets those)."""
    flags, skip = [], 0
    for index, arg in enumerate(argv):
        if skip:
            skip -= 1
            continue
        if index == 0 or (":" in arg and not arg.startswith("-") and argv[index - 1] != "--ws"):
            continue  # the binary, the application (not --ws's import string)
        if arg in ("--host", "--port"):
            skip = 1
            continue
        flags.append(arg)
    return flags


def substitute(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} should appear once in the shipped file"
    return text.replace(old, new)


class Nginx:
    """Debian's nginx on a private prefix: ``daemon off``, killed by PID."""

    def __init__(self, directory: Path, node_ports: list[int], cert: Path, key: Path) -> None:
        self.dir = directory
        self.http_port, self.https_port = free_port(), free_port()
        nodes = NODES.read_text()
        nodes = substitute(nodes, "127.0.0.1:8001", f"127.0.0.1:{node_ports[0]}")
        nodes = substitute(nodes, "127.0.0.1:8002", f"127.0.0.1:{node_ports[1]}")
        (directory / "nodes.conf").write_text(nodes)
        site = SITE.read_text()
        site = substitute(
            site, "include /etc/nginx/django-broadcasting/nodes.conf;", f"include {directory}/nodes.conf;"
        )
        site = substitute(site, "listen 80;", f"listen 127.0.0.1:{self.http_port};")
        site = substitute(site, "listen 443 ssl;", f"listen 127.0.0.1:{self.https_port} ssl;")
        site = substitute(site, "/etc/ssl/certs/broadcast.example.com.pem", str(cert))
        site = substitute(site, "/etc/ssl/private/broadcast.example.com.key", str(key))
        # No IPv6 on every test machine: the [::] listeners go.
        site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
        (directory / "site.conf").write_text(site)
        temp = "\n".join(
            f"  {name}_temp_path {directory}/{name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (directory / "nginx.conf").write_text(
            f"worker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log info;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log {directory}/access.log;\n{temp}\n  include {directory}/site.conf;\n}}\n"
        )
        self.process: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        return [nginx_binary(), "-p", str(self.dir), "-e", str(self.dir / "error.log"),
                "-c", str(self.dir / "nginx.conf"), *extra]  # fmt: skip

    def start(self) -> Nginx:
        check = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen(
            self.command("-g", "daemon off;"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for(lambda: port_open("127.0.0.1", self.https_port) or self.process.poll() is not None, 15,
                 message="nginx listening")  # fmt: skip
        assert self.process.poll() is None, self.log()
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful; the master stops its workers
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def wss(self, path: str) -> str:
        return f"wss://127.0.0.1:{self.https_port}{path}"


@pytest.fixture
def deployment(server_factory, redis_url, redis_prefix, tmp_path):
    binary = nginx_binary()
    if binary is None:
        from tests.conftest import require_service

        require_service(False, "nginx (Debian package 'nginx')")
    cert, key = make_certificate(tmp_path)
    env = read_env_file()
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        DJANGO_ALLOWED_HOSTS="broadcast.example.com,127.0.0.1,localhost",
        BROADCAST_REDIS_URL=redis_url,
        BROADCAST_CHANNELS_PREFIX=redis_prefix,
        BROADCAST_LOG_LEVEL="WARNING",
    )
    flags = uvicorn_flags(unit_exec_start())
    ports = [free_port(), free_port()]
    nodes = [server_factory("uvicorn", env=env, port=port, args=flags) for port in ports]
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    proxy = Nginx(nginx_dir, ports, cert, key).start()
    context = ssl.create_default_context(cafile=str(cert))
    try:
        yield {"proxy": proxy, "nodes": nodes, "env": env, "ssl": context, "flags": flags, "ports": ports,
               "server_factory": server_factory}  # fmt: skip
    finally:
        proxy.stop()


async def test_native_and_pusher_clients_over_wss_through_nginx(deployment):
    proxy, context, env = deployment["proxy"], deployment["ssl"], deployment["env"]
    native = await connect(proxy.wss("/ws?channel=general"), ssl=context)
    pusher = await websockets.connect(
        proxy.wss(f"/app/{env['PUSHER_APP_KEY']}?protocol=7&client=js&version=8.4.0"),
        ssl=context,
        open_timeout=10,
    )
    try:
        await expect(native, "subscribed")
        await pusher_client.expect(pusher, "pusher:connection_established")
        await pusher_client.send(pusher, "pusher:subscribe", {"channel": "general"})
        await pusher_client.expect(pusher, "pusher_internal:subscription_succeeded", channel="general")
        run_publisher(deployment["env"], "general", 1, event="hello")
        frame = await expect(native, "hello")
        assert frame["data"] == {"n": 0}
        echoed = await pusher_client.expect(pusher, "hello", channel="general")
        assert (
            json.loads(echoed["data"]) == {"n": 0}
            if isinstance(echoed["data"], str)
            else echoed["data"] == {"n": 0}
        )
    finally:
        await native.close()
        await pusher.close()


async def test_origin_check_sees_the_browser_origin_through_the_proxy(deployment):
    proxy, context = deployment["proxy"], deployment["ssl"]
    ok = await connect(proxy.wss("/ws"), ssl=context, origin=ALLOWED_ORIGIN)
    try:
        await expect(ok, "connected")
    finally:
        await ok.close()
    with pytest.raises(websockets.InvalidStatus) as info:
        await connect(proxy.wss("/ws"), ssl=context, origin="https://evil.example")
    assert info.value.response.status_code == 403


async def test_http_api_paths_are_proxied(deployment):
    import httpx

    proxy = deployment["proxy"]
    async with httpx.AsyncClient(verify=deployment["ssl"], timeout=10) as client:
        base = f"https://127.0.0.1:{proxy.https_port}"
        node = deployment["nodes"][0].base_url
        # Django and the Pusher API answer through the proxy as they do directly (not nginx's 404/502).
        for method, path, kwargs in (
            ("POST", "/broadcasting/auth", {"data": {"socket_id": "1.2", "channel_name": "private-user.5"}}),
            ("POST", "/apps/1/events", {"json": {}}),
        ):
            proxied = await client.request(method, base + path, **kwargs)
            direct = await client.request(method, node + path, **kwargs)
            assert proxied.status_code == direct.status_code, (path, proxied.text)
            assert proxied.status_code in (400, 401, 403), (path, proxied.status_code)
        redirect = await client.get(f"http://127.0.0.1:{proxy.http_port}/ws")
        assert redirect.status_code == 301 and redirect.headers["location"].startswith("https://")


class Follower:
    """A native client through the proxy that reconnects with ``last_id`` whenever its node goes away."""

    def __init__(self, proxy: Nginx, context: ssl.SSLContext, channel: str) -> None:
        self.proxy, self.context, self.channel = proxy, context, channel
        self.seen: list[int] = []
        self.last_id: str | None = None
        self.reconnects = 0
        self.recovered = 0

    async def _open(self):
        for _ in range(100):
            try:
                ws = await connect(self.proxy.wss("/ws"), ssl=self.context)
                break
            except (OSError, websockets.InvalidStatus, websockets.InvalidHandshake, TimeoutError):
                await asyncio.sleep(0.1)  # a node restarting: nginx answers 502 until one is back
        else:
            raise AssertionError("could not reconnect through the proxy")
        await expect(ws, "connected")
        frame = {"action": "subscribe", "channel": self.channel}
        if self.last_id:
            frame["last_id"] = self.last_id
        await ws.send(json.dumps(frame))
        return ws

    async def run(self, until: int, timeout: float = 90) -> None:
        async def loop():
            ws = await self._open()
            while not self.seen or self.seen[-1] < until:
                try:
                    frame = await recv(ws, 30)
                except websockets.ConnectionClosed:
                    self.reconnects += 1
                    ws = await self._open()
                    continue
                if frame["event"] == "recovered":
                    self.recovered += frame["data"]["count"]
                if frame["event"] == "tick":
                    self.seen.append(frame["data"]["n"])
                    self.last_id = frame["id"]
            await ws.close()

        await asyncio.wait_for(loop(), timeout)


async def test_rolling_restart_loses_nothing(deployment):
    proxy, context, env = deployment["proxy"], deployment["ssl"], deployment["env"]
    followers = [Follower(proxy, context, "general") for _ in range(4)]
    # Everyone is subscribed and has a last_id before the restart starts.
    for follower in followers:
        follower.ws_first = await follower._open()
    run_publisher(env, "general", 1, event="tick")
    for follower in followers:
        frame = await expect(follower.ws_first, "tick")
        follower.seen.append(-1)
        follower.last_id = frame["id"]
        await follower.ws_first.close()
    count = 40
    publisher = start_publisher(env, "general", count, interval=0.1, event="tick")
    tasks = [asyncio.create_task(f.run(until=count - 1)) for f in followers]
    # One node at a time: stop it (graceful SIGTERM), start it again on the same port, wait for it.
    factory = deployment["server_factory"]
    for index, node in enumerate(deployment["nodes"]):
        await asyncio.sleep(0.8)
        await asyncio.to_thread(node.stop)
        deployment["nodes"][index] = await asyncio.to_thread(
            factory, "uvicorn", env=env, port=node.port, args=deployment["flags"]
        )
    await asyncio.gather(*tasks)
    out, err = publisher.communicate(timeout=60)
    published = parse_results(out)
    assert len(published) == count and not [r for r in published if "error" in r], err
    # Shifted by the warm-up message (-1): every follower saw every message once, in order.
    for follower in followers:
        assert follower.seen == [-1, *range(count)], (follower.reconnects, follower.seen)
    assert sum(f.reconnects for f in followers) >= 1, "no client was on a restarted node"
    assert sum(f.recovered for f in followers) >= 1, "nothing was recovered from history"
