"""Discovery in one process: the project identity, records, the server's refusal, the publisher's checks.

The two-checkout scenarios with real server processes are in ``tests/integration/test_discovery.py``.
"""

from __future__ import annotations

import json
import os
import socket
from urllib.parse import quote

import pytest

from django_broadcasting import discovery
from django_broadcasting.backends.webclient import HTTPAnswerError
from django_broadcasting.conf import reload_broadcasting_settings
from django_broadcasting.discovery import Target
from django_broadcasting.exceptions import TransportError
from tests.servers import REPO_ROOT


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch):
    """Records go to a temporary directory of this test, and settings are read afresh."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    for name in (
        "BROADCAST_PROJECT",
        "BROADCAST_WEBSOCKET_HOST",
        "BROADCAST_WEBSOCKET_PORT",
        "BROADCAST_TRIGGER_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    reload_broadcasting_settings()
    yield
    reload_broadcasting_settings()


def write_record(**fields):
    record = {"host": "127.0.0.1", "port": 8000, **discovery.server_identity(), **fields}
    discovery.record_path().write_text(json.dumps(record))
    return record


def dead_pid() -> int:
    pid = os.getpid() + 10_000
    while discovery.pid_alive(pid):
        pid += 1
    return pid


# -- identity ---------------------------------------------------------------------------------------------
def test_the_project_is_the_directory_that_holds_the_settings_package():
    assert discovery.project() == str(REPO_ROOT.resolve())


def test_broadcast_project_names_the_project_instead(settings):
    settings.BROADCASTING = {"PROJECT": "shop"}
    assert discovery.project() == "shop"


def test_the_server_identity_says_who_answers():
    identity = discovery.server_identity()
    assert identity["pid"] == os.getpid() and identity["hostname"] == socket.gethostname()
    assert identity["node"] == f"{socket.gethostname()}:{os.getpid()}"
    assert identity["project"] == discovery.project() and identity["settings"] == "example_project.settings"
    assert len(identity["instance"]) == 16 and identity["instance"] == discovery.instance_id()


def test_two_projects_never_share_a_record(settings):
    first = discovery.record_path()
    settings.BROADCASTING = {"PROJECT": "/elsewhere/shop"}
    assert discovery.record_path() != first


# -- records ----------------------------------------------------------------------------------------------
def test_a_record_of_another_project_or_host_is_ignored():
    write_record()
    assert discovery.read_record()["port"] == 8000
    write_record(project="/another/checkout")
    assert discovery.read_record() is None
    write_record(hostname="another-machine")
    assert discovery.read_record() is None


def test_forget_keeps_a_record_a_server_rewrote_meanwhile():
    old = write_record(instance="old")
    write_record(instance="new")
    discovery.forget_record(old)
    assert discovery.read_record()["instance"] == "new"
    discovery.forget_record({"instance": "new"})
    assert not discovery.record_path().exists()


LISTENERS = """
import socket
from django_broadcasting.server.announce import listening_address
assert listening_address() is None  # a fresh process listens nowhere
with socket.socket() as listener:
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    assert listening_address() == ("127.0.0.1", listener.getsockname()[1]), listening_address()
    with socket.socket(socket.AF_INET6) as second:  # two ports: ambiguous, wait for a request
        second.bind(("::1", 0))
        second.listen()
        assert listening_address() is None
print("ok")
"""


def test_record_server_keeps_the_identity_and_a_reachable_host():
    discovery.record_server("0.0.0.0", 8123)
    record = discovery.read_record()
    assert (record["host"], record["port"], record["pid"]) == ("127.0.0.1", 8123, os.getpid())
    assert record["instance"] == discovery.instance_id()
    assert discovery.record_path().stat().st_mode & 0o777 == 0o600


# -- where a publisher posts ----------------------------------------------------------------------------------
def test_explicit_settings_win_over_a_record(settings):
    write_record(port=8000)
    settings.BROADCASTING = {"WEBSOCKET_PORT": 9001}
    target = discovery.resolve_target()
    assert (target.url, target.source, target.explicit) == (
        "http://127.0.0.1:9001/api/broadcast/events",
        "BROADCAST_WEBSOCKET_PORT",
        True,
    )
    settings.BROADCASTING = {"TRIGGER_URL": "http://example.test/hook"}
    assert discovery.resolve_target().source == "BROADCAST_TRIGGER_URL"


def test_without_settings_the_record_then_the_default():
    assert discovery.resolve_target().source == "default"
    assert discovery.resolve_target().url == "http://127.0.0.1:8080/api/broadcast/events"
    write_record(port=8000)
    target = discovery.resolve_target()
    assert (target.source, target.url) == ("record", "http://127.0.0.1:8000/api/broadcast/events")


def test_the_expectation_headers():
    discovered = discovery.resolve_target()
    assert discovered.headers() == {discovery.EXPECT_PROJECT_HEADER: quote(discovery.project(), safe="")}
    explicit = Target("http://127.0.0.1:1/api/broadcast/events", "BROADCAST_WEBSOCKET_PORT")
    assert explicit.headers()[discovery.EXPECT_HOST_HEADER] == quote(socket.gethostname(), safe="")


# -- the server's refusal ----------------------------------------------------------------------------------
def test_the_server_refuses_a_publisher_that_expects_another_project():
    assert discovery.refusal(None, None) is None
    assert discovery.refusal(quote(discovery.project(), safe=""), None) is None
    body = discovery.refusal(quote("/other/checkout", safe=""), None)
    assert body["error"]["code"] == "wrong_project" and "/other/checkout" in body["error"]["message"]
    assert body["server"]["project"] == discovery.project()
    # An explicit target on another machine may live at another path; on this one it may not.
    assert discovery.refusal("/other/checkout", "another-machine") is None
    assert discovery.refusal("/other/checkout", quote(socket.gethostname()))["server"]


async def test_the_trigger_answers_409_and_delivers_nothing(async_client, monkeypatch):
    from django_broadcasting.http.trigger import encode_body, sign
    from django_broadcasting.messages import Message
    from django_broadcasting.server.hub import get_hub

    relayed = []

    async def relay(messages):
        relayed.extend(messages)

    monkeypatch.setattr(get_hub(), "relay", relay)
    body = encode_body(Message.for_channels(["general"], "e", {}))
    headers = {key: value for key, value in sign(body).items()}
    wrong = {**headers, discovery.EXPECT_PROJECT_HEADER: quote("/other/checkout", safe="")}
    response = await async_client.post(
        "/api/broadcast/events", body, content_type="application/json", headers=wrong
    )
    assert response.status_code == 409 and relayed == []
    assert response.json()["server"]["project"] == discovery.project()
    right = {**headers, discovery.EXPECT_PROJECT_HEADER: quote(discovery.project(), safe="")}
    response = await async_client.post(
        "/api/broadcast/events", body, content_type="application/json", headers=right
    )
    assert response.status_code == 202 and len(relayed) == 1
    assert response.json()["server"] == discovery.server_identity()


# -- the publisher's checks --------------------------------------------------------------------------------
def answer(**identity):
    return {"ok": True, "messages": 1, "server": {**discovery.server_identity(), **identity}}


def test_an_answer_from_this_project_names_the_server():
    target = discovery.resolve_target()
    accepted_by = target.accepted(answer())
    assert accepted_by == (
        f"the server at 127.0.0.1:8080 (node {discovery.node_id()}, project {discovery.project()})"
    )


def test_an_answer_from_another_project_is_a_failure():
    with pytest.raises(TransportError, match="serves another project"):
        discovery.resolve_target().accepted(answer(project="/other/checkout"))
    explicit = Target("http://10.0.0.5:8080/api/broadcast/events", "BROADCAST_WEBSOCKET_HOST")
    assert "10.0.0.5:8080" in explicit.accepted(answer(project="/srv/app", hostname="web-1"))
    with pytest.raises(TransportError, match="BROADCAST_PROJECT"):
        explicit.accepted(answer(project="/srv/app"))  # same machine, another checkout


def test_a_discovered_server_must_say_who_it_is():
    with pytest.raises(TransportError, match="without saying which project"):
        discovery.resolve_target().accepted({"ok": True, "messages": 1})
    with pytest.raises(TransportError, match="did not accept"):
        discovery.resolve_target().accepted({"ok": False})


def test_a_refusal_removes_the_stale_record_and_says_what_to_set():
    write_record(pid=dead_pid(), instance="gone")
    target = discovery.resolve_target()
    refused = HTTPAnswerError(
        "answered HTTP 409", status=409, payload={"server": answer(project="/tmp/bob")["server"]}
    )
    error = target.failed(refused)
    assert "serves another project" in error.detail and "/tmp/bob" in error.detail
    assert "BROADCAST_WEBSOCKET_PORT" in error.detail and "\n" not in error.detail
    assert not discovery.record_path().exists()


def test_an_unreachable_dead_server_removes_its_record():
    write_record(pid=dead_pid(), instance="gone")
    error = discovery.resolve_target().failed(
        TransportError("Cannot reach the broadcast server at x: refused")
    )
    assert error.detail.startswith("Cannot reach the broadcast server at x: refused (")
    assert "has exited" in error.detail and "BROADCAST_WEBSOCKET_PORT" in error.detail
    assert not discovery.record_path().exists()


def test_a_recorded_port_that_answers_something_else_removes_the_record():
    write_record()  # its process is alive, but its port now serves another program
    error = discovery.resolve_target().failed(
        HTTPAnswerError("The broadcast server at x answered HTTP 404: Not Found", status=404)
    )
    assert "no longer answers there" in error.detail and "BROADCAST_WEBSOCKET_PORT" in error.detail
    assert not discovery.record_path().exists()


def test_an_unreachable_live_server_keeps_its_record():
    write_record()  # this very process: alive
    error = discovery.resolve_target().failed(
        TransportError("Cannot reach the broadcast server at x: refused")
    )
    assert "does not answer" in error.detail
    assert discovery.record_path().exists()


# -- receipts ---------------------------------------------------------------------------------------------
def test_backends_name_what_accepted_a_publish(settings):
    from django_broadcasting.backends.local import _address
    from django_broadcasting.drivers import get_driver

    settings.BROADCASTING = {"REDIS_URL": "redis://:secret@redis.internal:6380/2"}
    assert get_driver("redis").describe() == "Redis at redis.internal:6380/2"  # never the password
    assert get_driver("log").describe().startswith("the log driver")
    assert get_driver("null").describe().startswith("the null driver")
    assert _address({"address": "redis://:pw@cache:6390/1"}) == "cache:6390/1"
