"""Smoke tests of the server-process fixtures: daphne and uvicorn serve the example project."""

from __future__ import annotations

import httpx
import pytest

from tests.servers import ServerProcess, free_port, port_open

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_server_serves_admin_login(server_factory, kind):
    server = server_factory(kind)
    assert server.is_running()
    response = httpx.get(server.url("/admin/login/"), timeout=10)
    assert response.status_code == 200
    assert "csrfmiddlewaretoken" in response.text


def test_server_stops_and_frees_its_port(server_factory):
    server = server_factory("daphne")
    pid = server.pid
    assert port_open(server.host, server.port)
    server.stop()
    assert not server.is_running()
    assert server.process is not None and server.process.pid == pid
    assert not port_open(server.host, server.port)


def test_server_that_cannot_start_reports_its_log(tmp_path):
    server = ServerProcess(
        "daphne",
        app="example_project.no_such_module:application",
        log_path=tmp_path / "bad.log",
        startup_timeout=20,
    )
    with pytest.raises(RuntimeError, match="exited with code"):
        server.start()
    assert "no_such_module" in server.log_text()
    assert not server.is_running()


def test_free_port_is_not_listening():
    assert not port_open("127.0.0.1", free_port())


def test_module_scoped_daphne_answers(daphne_server):
    response = httpx.get(daphne_server.url("/admin/login/"), timeout=10)
    assert response.status_code == 200
