"""``deploy/``: the compose file, the Dockerfile and the env file agree with the tested deployment.

Images cannot be built here, so this checks what ``tests/integration/test_deployment.py`` cannot:
compose runs the systemd unit's uvicorn command (the one the deployment test starts), on the ports
the nginx node list names, with the tested environment file; nginx mounts the same site file.
"""

from __future__ import annotations

import re
import shlex

import yaml

from django_broadcasting.conf import OPTIONS
from tests.integration.test_deployment import DEPLOY, ENV_FILE, SITE, UNIT, read_env_file, unit_exec_start

COMPOSE = DEPLOY / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
APP = "mysite.asgi:application"
# Inside containers nginx is not on 127.0.0.1: the one flag allowed to differ from the unit.
CONTAINER_FLAGS = {"--forwarded-allow-ips": "*", "--host": "0.0.0.0"}


def normalised(argv: list[str]) -> dict[str, str | None]:
    """uvicorn flags as {flag: value}, without the binary, the app, --port and the container-only flags."""
    flags: dict[str, str | None] = {}
    args = [a for a in argv if a not in ("uvicorn",) and not a.endswith("/uvicorn") and a != APP]
    i = 0
    while i < len(args):
        flag = args[i]
        value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else None
        flags[flag] = value
        i += 2 if value is not None else 1
    for name in ("--port", "--host", "--forwarded-allow-ips"):
        flags.pop(name, None)
    return flags


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def app_services() -> dict[str, dict]:
    return {name: s for name, s in compose()["services"].items() if name.startswith("app")}


def test_env_file_lists_every_environment_variable():
    text = ENV_FILE.read_text()
    missing = [
        opt.env for opt in OPTIONS.values() if opt.env and not re.search(rf"^#? ?{opt.env}=", text, re.M)
    ]
    assert not missing, f"not in deploy/broadcasting.env: {missing}"


def test_unit_and_compose_run_the_same_uvicorn_command():
    unit = unit_exec_start()
    assert unit[1] == APP and unit[unit.index("--port") + 1] == "%i"
    for name, service in app_services().items():
        command = service["command"]
        assert command[:2] == ["uvicorn", APP], name
        assert normalised(command) == normalised(unit), name
        for flag, value in CONTAINER_FLAGS.items():
            assert command[command.index(flag) + 1] == value, (name, flag)


def test_dockerfile_cmd_is_the_same_command():
    cmd = re.search(r'^CMD \["sh", "-c", "exec (.+)"\]$', DOCKERFILE.read_text(), re.M).group(1)
    argv = shlex.split(cmd.replace("${PORT}", "8001"))
    assert normalised(argv) == normalised(unit_exec_start())


def test_compose_ports_match_the_nginx_node_list_and_the_commands():
    nodes = re.findall(r"^server (\w+):(\d+)", (DEPLOY / "nginx" / "nodes.compose.conf").read_text(), re.M)
    services = app_services()
    assert sorted(nodes) == sorted((name, s["expose"][0]) for name, s in services.items())
    for name, port in nodes:
        service = services[name]
        assert service["command"][service["command"].index("--port") + 1] == port
        assert service["environment"]["PORT"] == port
    host_nodes = re.findall(
        r"^server 127\.0\.0\.1:(\d+)", (DEPLOY / "nginx" / "nodes.conf").read_text(), re.M
    )
    assert sorted(host_nodes) == sorted(port for _, port in nodes)


def test_compose_uses_the_tested_environment_file():
    tested = read_env_file()
    for name, service in app_services().items():
        assert service["env_file"] == ["broadcasting.env"], name
        # Only what differs per container is set beside it.
        assert set(service["environment"]) <= {"PORT", "BROADCAST_NODE_ID", "BROADCAST_REDIS_URL"}, name
        assert "redis" in service["depends_on"]
    assert "BROADCAST_REDIS_URL" in tested and tested["BROADCAST_DRIVER"] == "redis"


def test_compose_nginx_mounts_the_tested_site_file_at_the_paths_it_names():
    nginx = compose()["services"]["nginx"]
    mounts = dict(v.rsplit(":", 1)[0].split(":", 1) for v in nginx["volumes"])
    site = SITE.read_text()
    assert mounts["./nginx/django-broadcasting.conf"].startswith("/etc/nginx/conf.d/")
    include = re.search(r"include (\S+);", site).group(1)
    assert mounts["./nginx/nodes.compose.conf"] == include
    for directive in ("ssl_certificate", "ssl_certificate_key"):
        path = re.search(rf"^\s*{directive}\s+(\S+);", site, re.M).group(1)
        assert path in mounts.values(), directive
    listens = set(re.findall(r"^\s*listen (\d+)", site, re.M))
    assert {p.split(":")[1] for p in nginx["ports"]} == listens == {"80", "443"}


def test_proxy_timeouts_stay_above_the_ping_interval():
    ping = float(read_env_file()["BROADCAST_PING_INTERVAL"])
    blocks = re.findall(r"location (/ws|/app/) \{(.*?)\}", SITE.read_text(), re.S)
    assert {path for path, _ in blocks} == {"/ws", "/app/"}
    for path, body in blocks:
        assert "Upgrade $http_upgrade" in body, path
        timeout = float(re.search(r"proxy_read_timeout (\d+)s", body).group(1))
        assert timeout > ping, path


def test_unit_reads_the_env_file_and_restarts_gracefully():
    unit = UNIT.read_text()
    assert "EnvironmentFile=/etc/django-broadcasting/broadcasting.env" in unit
    assert "KillSignal=SIGTERM" in unit and "--timeout-graceful-shutdown" in unit
    grace = int(re.search(r"--timeout-graceful-shutdown (\d+)", unit).group(1))
    assert int(re.search(r"TimeoutStopSec=(\d+)", unit).group(1)) > grace
