"""The publish ingress at the ASGI level, and the Django views over the same endpoints.

Two front doors serve one test site (``ingress_settings``: the broadcasting URLs under ``/bc/``,
a stamping middleware first in ``MIDDLEWARE``):

* ``fast``: the composition root (``example_project.asgi``, i.e. ``django_broadcasting.asgi``)
  on daphne and on uvicorn, where the ASGI ingress answers before Django;
* ``django_path``: a project's own ``asgi.py`` with Django alone (``ingress_asgi.django_only``),
  where the same URLs reach the Django views; it publishes through ``fast``'s trigger.

Responses Django produced carry ``X-Through-Django``; the ingress's never do.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import pytest

from django_broadcasting.drivers.pusher import PusherDriver
from django_broadcasting.http.trigger import sign
from django_broadcasting.messages import Message
from tests.integration import wsclient
from tests.integration.ingress_site import MARK_HEADER, PREFIX
from tests.integration.pusher_client import APP_ID, APP_KEY, APP_SECRET, PUSHER_ENV, signed_query
from tests.servers import ServerProcess

pytestmark = pytest.mark.integration

SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.integration.ingress_settings", **PUSHER_ENV}
EVENTS = f"{PREFIX}/apps/{APP_ID}/events"
BATCH = f"{PREFIX}/apps/{APP_ID}/batch_events"
TRIGGER = f"{PREFIX}/api/broadcast/events"
LIMIT = 1_048_576  # TRIGGER_MAX_BODY's default


def _start(request, tmp_path_factory, db_path, kind: str, **kwargs) -> ServerProcess:
    env = {"DATABASE_PATH": str(db_path), **SETTINGS, **kwargs.pop("env", {})}
    log = tmp_path_factory.mktemp("ingress") / f"{kind}.log"
    return ServerProcess(kind, env=env, log_path=log, **kwargs).start()


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def fast(request, migrated_db_path, tmp_path_factory):
    server = _start(request, tmp_path_factory, migrated_db_path, request.param)
    yield server
    server.stop()
    if request.session.testsfailed:
        print(server.log_tail(100))


@pytest.fixture(scope="module")
def django_path(request, fast, migrated_db_path, tmp_path_factory):
    server = _start(
        request,
        tmp_path_factory,
        migrated_db_path,
        "uvicorn",
        app="tests.integration.ingress_asgi:django_only",
        env={"BROADCAST_TRIGGER_URL": fast.url(TRIGGER)},
    )
    yield server
    server.stop()
    if request.session.testsfailed:
        print(server.log_tail(100))


def pusher_post(server, path: str, payload, **sign_kwargs) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    url = server.url(path) + "?" + signed_query("POST", path, body, **sign_kwargs)
    return httpx.post(url, content=body, headers={"Content-Type": "application/json"})


def trigger_post(server, payload: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        server.url(TRIGGER), content=payload, headers={"Content-Type": "application/json", **headers}
    )


# -- which front door answers ----------------------------------------------------------------------
async def test_ingress_answers_before_django_middleware(fast):
    async with await wsclient.connect(fast.ws_url("/ws?channel=general")) as ws:
        await wsclient.expect(ws, "subscribed")
        response = await asyncio.to_thread(
            pusher_post, fast, EVENTS, {"name": "fast", "channels": ["general"], "data": '{"n":1}'}
        )
        assert response.status_code == 200 and response.json() == {}
        assert MARK_HEADER not in response.headers
        assert (await wsclient.expect(ws, "fast"))["data"] == {"n": 1}

        batch = {"batch": [{"channel": "general", "name": f"b{i}", "data": str(i)} for i in range(10)]}
        response = await asyncio.to_thread(pusher_post, fast, BATCH, batch)
        assert response.status_code == 200 and MARK_HEADER not in response.headers
        assert [(await wsclient.expect(ws, f"b{i}"))["data"] for i in range(10)] == list(range(10))

        payload = json.dumps({"channel": "general", "event": "triggered", "data": {"ok": True}}).encode()
        response = await asyncio.to_thread(trigger_post, fast, payload, sign(payload))
        answer = response.json()
        assert response.status_code == 202 and (answer["ok"], answer["messages"]) == (True, 1)
        assert answer["server"]["pid"] == fast.pid
        assert MARK_HEADER not in response.headers
        await wsclient.expect(ws, "triggered")
    # Every other URL still goes through Django and its middleware.
    admin = httpx.get(fast.url("/admin/login/"))
    assert admin.status_code == 200 and admin.headers[MARK_HEADER] == "1"


async def test_django_views_answer_the_same_urls_through_middleware(fast, django_path):
    async with await wsclient.connect(fast.ws_url("/ws?channel=general")) as ws:
        await wsclient.expect(ws, "subscribed")
        response = await asyncio.to_thread(
            pusher_post, django_path, EVENTS, {"name": "via-django", "channels": ["general"], "data": "{}"}
        )
        assert response.status_code == 200 and response.json() == {}
        assert response.headers[MARK_HEADER] == "1"
        # That process serves no WebSockets: its default driver posted to fast's trigger.
        await wsclient.expect(ws, "via-django")
    payload = json.dumps({"channel": "general", "event": "x", "data": {}}).encode()
    response = trigger_post(django_path, payload, sign(payload))
    answer = response.json()
    assert response.status_code == 202 and (answer["ok"], answer["messages"]) == (True, 1)
    assert response.headers[MARK_HEADER] == "1"


async def test_pusher_driver_publishes_to_a_prefixed_mount(fast):
    driver = PusherDriver(
        "pusher",
        {"host": "127.0.0.1", "port": fast.port, "path": PREFIX, "app_id": APP_ID, "key": APP_KEY,
         "secret": APP_SECRET},
    )  # fmt: skip
    async with await wsclient.connect(fast.ws_url("/ws?channel=general")) as ws:
        await wsclient.expect(ws, "subscribed")
        await driver.abroadcast([Message("general", "one", {"i": 1}), Message("general", "two", {"i": 2})])
        assert (await wsclient.expect(ws, "one"))["data"] == {"i": 1}
        assert (await wsclient.expect(ws, "two"))["data"] == {"i": 2}


def test_urls_not_in_the_urlconf_fall_through_to_django(fast):
    # This site mounts the URLs under /bc/ only: the root paths are Django's 404s.
    root = pusher_post(fast, f"/apps/{APP_ID}/events", {"name": "x", "channels": ["general"], "data": "{}"})
    assert root.status_code == 404 and root.headers[MARK_HEADER] == "1"
    payload = b'{"channel":"general","event":"x"}'
    root = httpx.post(fast.url("/api/broadcast/events"), content=payload, headers=sign(payload))
    assert root.status_code == 404 and root.headers[MARK_HEADER] == "1"
    # A path that only looks like an ingress URL is Django's too.
    assert httpx.post(fast.url(f"{PREFIX}/apps/{APP_ID}/other/events")).headers[MARK_HEADER] == "1"


def test_channel_information_through_both_doors(fast, django_path):
    for server in (fast, django_path):
        path = f"{PREFIX}/apps/{APP_ID}/channels/presence-room.1"
        url = server.url(path) + "?" + signed_query("GET", path, info="user_count")
        response = httpx.get(url)
        assert response.status_code == 200 and response.json() == {"occupied": False, "user_count": 0}
        path = f"{PREFIX}/apps/{APP_ID}/users/77/terminate_connections"
        response = httpx.post(server.url(path) + "?" + signed_query("POST", path, b"{}"), content=b"{}")
        assert response.status_code == 200 and response.json() == {}


# -- bad input: the same answer from both doors ------------------------------------------------------
def _pusher_case(server, case: str) -> httpx.Response:
    good = {"name": "x", "channels": ["general"], "data": "{}"}
    if case == "bad json":
        return pusher_post(server, EVENTS, b"{not json")
    if case == "not an object":
        return pusher_post(server, EVENTS, b"[1]")
    if case == "oversized":
        return pusher_post(server, EVENTS, {**good, "pad": "x" * LIMIT})
    if case == "data too large":
        return pusher_post(server, EVENTS, {**good, "data": "x" * 70_000})
    if case == "wrong method":
        return httpx.get(server.url(EVENTS) + "?" + signed_query("GET", EVENTS))
    if case == "bad signature":
        return pusher_post(server, EVENTS, good, secret="not-the-secret")
    if case == "stale timestamp":
        return pusher_post(server, EVENTS, good, timestamp=int(time.time()) - 700)
    if case == "unsigned":
        return httpx.post(server.url(EVENTS), json=good)
    if case == "unknown app":
        return pusher_post(server, f"{PREFIX}/apps/999/events", good)
    if case == "too many channels":
        return pusher_post(server, EVENTS, {**good, "channels": [f"c{i}" for i in range(101)]})
    if case == "bad channel":
        return pusher_post(server, EVENTS, {**good, "channels": ["bad channel!"]})
    if case == "batch too long":
        return pusher_post(server, BATCH, {"batch": [{"channel": "general", "name": "x", "data": "{}"}] * 11})
    raise AssertionError(case)


def _trigger_case(server, case: str) -> httpx.Response:
    payload = json.dumps({"channel": "general", "event": "x", "data": {}}).encode()
    if case == "bad json":
        return trigger_post(server, b"{nope", sign(b"{nope"))
    if case == "oversized":
        big = json.dumps({"channel": "general", "event": "x", "data": {"pad": "x" * LIMIT}}).encode()
        return trigger_post(server, big, sign(big))
    if case == "wrong method":
        return httpx.get(server.url(TRIGGER))
    if case == "bad signature":
        return trigger_post(server, payload, {**sign(payload), "X-Broadcast-Signature": "sha256=" + "0" * 64})
    if case == "stale timestamp":
        return trigger_post(server, payload, sign(payload, int(time.time()) - 3600))
    if case == "unsigned":
        return trigger_post(server, payload, {})
    if case == "bad channel":
        bad = json.dumps({"channel": "bad channel!", "event": "x"}).encode()
        return trigger_post(server, bad, sign(bad))
    raise AssertionError(case)


def _answer(response: httpx.Response) -> tuple:
    # Times differ between two requests that straddle a second: compare the answers without them.
    text = re.sub(r"(server time|given timestamp) \d+", r"\1 N", response.text)
    kind = response.headers.get("content-type", "").split(";")[0]
    return response.status_code, kind, text, response.headers.get("allow")


@pytest.mark.parametrize(
    "case, status",
    [
        ("bad json", 400),
        ("not an object", 400),
        ("oversized", 413),
        ("data too large", 413),
        ("wrong method", 405),
        ("bad signature", 401),
        ("stale timestamp", 401),
        ("unsigned", 401),
        ("unknown app", 404),
        ("too many channels", 400),
        ("bad channel", 400),
        ("batch too long", 400),
    ],
)
def test_pusher_api_refusals_are_the_same_on_both_paths(fast, django_path, case, status):
    fast_answer, django_answer = _answer(_pusher_case(fast, case)), _answer(_pusher_case(django_path, case))
    assert fast_answer[0] == status, fast_answer
    assert fast_answer == django_answer
    if status != 405:
        assert fast_answer[1] == "text/plain" and fast_answer[2]


@pytest.mark.parametrize(
    "case, status, code",
    [
        ("bad json", 400, "invalid"),
        ("oversized", 413, "too_large"),
        ("wrong method", 405, None),
        ("bad signature", 403, "bad_signature"),
        ("stale timestamp", 403, "stale_timestamp"),
        ("unsigned", 401, "unsigned"),
        ("bad channel", 400, "invalid"),
    ],
)
def test_trigger_refusals_are_the_same_on_both_paths(fast, django_path, case, status, code):
    fast_response = _trigger_case(fast, case)
    fast_answer, django_answer = _answer(fast_response), _answer(_trigger_case(django_path, case))
    assert fast_answer[0] == status, fast_answer
    assert fast_answer == django_answer
    if code is None:
        assert fast_answer[3] == "POST" and fast_answer[2] == ""
    else:
        assert fast_response.json()["error"]["code"] == code


def test_body_without_length_is_cut_off_at_the_limit(fast):
    """A chunked body (no Content-Length) is read only up to the limit, then refused."""

    def chunks():
        for _ in range(3):
            yield b"x" * (LIMIT // 2)

    path = EVENTS
    response = httpx.post(fast.url(path) + "?" + signed_query("POST", path), content=chunks())
    assert response.status_code == 413
    assert response.text == f"Request body larger than {LIMIT} bytes."
    response = httpx.post(fast.url(TRIGGER), content=chunks(), headers=sign(b""))
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
