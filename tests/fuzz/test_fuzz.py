"""Property-based fuzzing of a live server (daphne and uvicorn) with Hypothesis.

Properties, for every generated input:

* WebSocket frames, native (``/ws``) and Pusher (``/app/{key}``): the server answers the next
  frame (no hang), never with an internal error, and never closes with 1011 or drops the TCP
  connection without a close frame; closing with a protocol code (4009 for a bad signin, say) is fine.
* HTTP (``/broadcasting/auth``, ``/broadcasting/user-auth``, the signed trigger
  ``/api/broadcast/events`` and the Pusher HTTP API ``/apps/{id}/events``): never a 5xx; without
  a verified Bearer token, the auth endpoints never sign for a session cookie (no CSRF token) and
  ``user-auth`` never signs at all.
* Handshakes with fuzzed channels, tokens, app keys and protocol versions: never a 5xx or 1011.

After each server's run: its log holds no ``Traceback`` and no ``Exception``, it still answers
pings on both protocols and delivers a broadcast. ``FUZZ_EXAMPLES`` sets the number of inputs
across all targets and servers (300 in the ordinary suite, 100,000 under ``make fuzz``);
``FUZZ_SERVERS=daphne`` restricts the servers (default: daphne, uvicorn on its own ``websockets-sansio``
protocol, and ``uvicorn-front``, uvicorn on this project's).
"""

from __future__ import annotations

import json
import os
import re
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.servers import ServerProcess, create_user

from . import strategies as fz
from .harness import (
    COUNTS,
    FUZZ_ENV,
    PUSHER_EVENTS_PATH,
    STATUSES,
    FrameSession,
    auth_headers,
    bearer,
    budget,
    handshake_url,
    pusher_api_params,
    trigger_headers,
    try_handshake,
)

pytestmark = [pytest.mark.integration, pytest.mark.fuzz]

KINDS = [kind for kind in os.environ.get("FUZZ_SERVERS", "daphne,uvicorn,uvicorn-front").split(",") if kind]
SHARES = {
    "native": 0.30,
    "pusher": 0.30,
    "auth": 0.10,
    "user-auth": 0.04,
    "trigger": 0.10,
    "pusher-api": 0.10,
    "handshake": 0.06,
}
RECONNECT_EVERY = 400  # a fresh socket now and then: subscriptions and presence start over


def fuzz_settings(target: str):
    return settings(
        max_examples=budget(SHARES[target] / len(KINDS)),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )


@pytest.fixture(params=KINDS, scope="module")
def server(request, migrated_db_path, tmp_path_factory):
    srv = ServerProcess(
        request.param,
        env={"DATABASE_PATH": str(migrated_db_path), **FUZZ_ENV},
        log_path=tmp_path_factory.mktemp("fuzz") / f"{request.param}.log",
    ).start()
    yield srv
    srv.stop()
    if request.session.testsfailed:
        print(srv.log_tail(120))


@pytest.fixture(scope="module")
def session_cookie(server, migrated_db_path) -> str:
    """A logged-in staff session's cookies (without its CSRF header: the attacker's position)."""
    username = f"fuzz-{uuid.uuid4().hex[:8]}"
    create_user(migrated_db_path, username, "pw-123456", is_staff=True, is_superuser=True)
    with httpx.Client(base_url=server.base_url) as client:
        page = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        login = client.post(
            "/admin/login/?next=/admin/",
            data={"username": username, "password": "pw-123456", "csrfmiddlewaretoken": token},
        )
        assert login.status_code == 302, login.text[:300]
        return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def _frames(server: ServerProcess, protocol: str, strategy) -> None:
    if protocol == "native":
        urls = [server.ws_url("/ws"), server.ws_url(f"/ws?auth_token={bearer()[7:]}")]
    else:
        urls = [server.ws_url("/app/test-key?protocol=7&client=fuzz")] * 2
    sessions = [FrameSession(url, protocol) for url in urls]
    label = f"{server.kind} {protocol} frames"

    @fuzz_settings(protocol)
    @given(frame=strategy)
    def run(frame):
        count = COUNTS[label] = COUNTS[label] + 1
        session = sessions[count % 2]
        if count % RECONNECT_EVERY == 0:
            session.close()
            session.connect()
        session.exchange(frame)

    try:
        run()
    finally:
        for session in sessions:
            session.close()


def test_native_frames(server):
    _frames(server, "native", fz.native_frame())


def test_pusher_frames(server):
    _frames(server, "pusher", fz.pusher_frame())


def _record(label: str, response: httpx.Response, what: object) -> None:
    COUNTS[label] += 1
    STATUSES[f"{label.split(' ', 1)[1]} {response.status_code}"] += 1
    assert response.status_code < 500, f"{response.status_code} for {what!r}: {response.text[:300]}"


@pytest.mark.parametrize(
    ("target", "path"), [("auth", "/broadcasting/auth"), ("user-auth", "/broadcasting/user-auth")]
)
def test_broadcasting_auth_endpoints(server, session_cookie, target, path):
    label = f"{server.kind} {path}"
    with httpx.Client(base_url=server.base_url, timeout=10) as client:

        @fuzz_settings(target)
        @given(request=fz.auth_request(), with_cookie=st.booleans())
        def run(request, with_cookie):
            headers = auth_headers(request, session_cookie if with_cookie else None)
            if request["body"] is None:
                fields = {key: str(value) for key, value in request["fields"].items()}
                response = client.post(path, data=fields, headers=headers)
            else:
                response = client.post(path, content=request["body"], headers=headers)
            _record(label, response, request)
            if request["authorization"] != "VALID" and response.status_code == 200:
                # Without a verified token nothing is signed for a cookie (its CSRF token is never
                # right here), and a sign-in is never signed for an anonymous request.
                assert not with_cookie, f"signed for a session without CSRF: {request!r}"
                assert target == "auth", f"user-auth signed without a user: {request!r}"

        run()


def test_trigger_endpoint(server):
    label = f"{server.kind} /api/broadcast/events"
    with httpx.Client(base_url=server.base_url, timeout=10) as client:

        @fuzz_settings("trigger")
        @given(body=fz.trigger_body, mode=fz.signing)
        def run(body, mode):
            response = client.post("/api/broadcast/events", content=body, headers=trigger_headers(body, mode))
            _record(label, response, (mode, body[:300]))

        run()


def test_pusher_http_api(server):
    label = f"{server.kind} {PUSHER_EVENTS_PATH}"
    with httpx.Client(base_url=server.base_url, timeout=10) as client:

        @fuzz_settings("pusher-api")
        @given(body=fz.pusher_api_body, mode=fz.signing)
        def run(body, mode):
            params = pusher_api_params(PUSHER_EVENTS_PATH, body, mode)
            response = client.post(
                PUSHER_EVENTS_PATH, params=params, content=body, headers={"Content-Type": "application/json"}
            )
            _record(label, response, (mode, body[:300]))

        run()


def test_handshakes(server):
    label = f"{server.kind} handshakes"

    @fuzz_settings("handshake")
    @given(shape=fz.handshake)
    def run(shape):
        COUNTS[label] += 1
        outcome = try_handshake(handshake_url(server, *shape))
        STATUSES[f"handshake {outcome}"] += 1

    run()


def test_zz_server_survived_the_fuzzing(server):
    """Runs last for each server: alive, answering both protocols, delivering, and a clean log."""
    assert server.is_running()
    native = FrameSession(server.ws_url("/ws"), "native")
    pusher = FrameSession(server.ws_url("/app/test-key?protocol=7"), "pusher")
    try:
        assert any('"pong"' in answer for answer in native.exchange('{"action":"ping"}'))
        assert any("pusher:pong" in answer for answer in pusher.exchange('{"event":"pusher:ping","data":{}}'))
        native.exchange('{"action":"subscribe","channel":"general"}')
        pusher.exchange('{"event":"pusher:subscribe","data":{"channel":"general"}}')
        body = json.dumps({"channel": "general", "event": "after-fuzz", "data": {"n": 1}}).encode()
        response = httpx.post(
            server.url("/api/broadcast/events"),
            content=body,
            headers=trigger_headers(body, "valid"),
            timeout=10,
        )
        assert response.status_code == 202, response.text
        assert any("after-fuzz" in answer for answer in native.exchange('{"action":"ping"}'))
        assert any("after-fuzz" in answer for answer in pusher.exchange('{"event":"pusher:ping","data":{}}'))
    finally:
        native.close()
        pusher.close()
    log = server.log_text()
    for needle in ("Traceback", "Exception"):
        assert needle not in log, server.log_tail(120)
