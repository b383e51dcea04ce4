"""The WebSocket auth middleware: identity sources, refused handshakes, origin policy."""

from __future__ import annotations

import json
import time

import jwt as pyjwt
import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client, override_settings

from django_broadcasting.auth.jwt import encode_token
from django_broadcasting.auth.middleware import (
    ORIGIN_FORBIDDEN_CODE,
    SCOPE_IDENTITY,
    SCOPE_SUBPROTOCOL,
    BroadcastAuthMiddleware,
    BroadcastAuthMiddlewareStack,
    origin_allowed,
)

SECRET = "middleware-test-secret-0123456789-0123456789-0123456789-0123456789"
HS = {"JWT_SECRET": SECRET}


class EchoApp:
    """A tiny ASGI WebSocket app: accepts with the chosen subprotocol and reports its identity."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            self.calls += 1
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        self.calls += 1
        message = await receive()
        assert message["type"] == "websocket.connect"
        accept = {"type": "websocket.accept"}
        if scope.get(SCOPE_SUBPROTOCOL):
            accept["subprotocol"] = scope[SCOPE_SUBPROTOCOL]
        await send(accept)
        identity = scope[SCOPE_IDENTITY]
        user = scope.get("user")
        await send(
            {
                "type": "websocket.send",
                "text": json.dumps(
                    {
                        "user_id": identity.user_id,
                        "roles": sorted(identity.roles),
                        "name": identity.name,
                        "scope_user": getattr(user, "username", None) if user is not None else None,
                    }
                ),
            }
        )
        while (await receive())["type"] != "websocket.disconnect":
            pass


async def connect(app, path="/ws", headers=(), subprotocols=None):
    communicator = WebsocketCommunicator(app, path, headers=list(headers), subprotocols=subprotocols)
    connected, detail = await communicator.connect(timeout=3)
    payload = json.loads(await communicator.receive_from(timeout=3)) if connected else None
    await communicator.disconnect()
    return connected, detail, payload


# -- identity sources -----------------------------------------------------------------------------
@override_settings(BROADCASTING=HS)
async def test_no_token_is_anonymous():
    connected, _, payload = await connect(BroadcastAuthMiddleware(EchoApp()))
    assert connected and payload["user_id"] is None


@override_settings(BROADCASTING=HS)
async def test_token_in_query_string():
    token = encode_token(5, roles=["admin"], name="Ada")
    connected, _, payload = await connect(
        BroadcastAuthMiddleware(EchoApp()), f"/ws?channel=general&auth_token={token}"
    )
    assert connected
    assert payload == {"user_id": "5", "roles": ["admin"], "name": "Ada", "scope_user": None}


@override_settings(BROADCASTING=HS)
async def test_token_in_authorization_header():
    token = encode_token(6)
    connected, _, payload = await connect(
        BroadcastAuthMiddleware(EchoApp()), headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    assert connected and payload["user_id"] == "6"


@override_settings(BROADCASTING=HS)
async def test_token_in_subprotocol_is_accepted_with_the_broadcasting_subprotocol():
    token = encode_token(7)
    connected, subprotocol, payload = await connect(
        BroadcastAuthMiddleware(EchoApp()), subprotocols=["broadcasting", f"bearer.{token}"]
    )
    assert connected and payload["user_id"] == "7"
    assert subprotocol == "broadcasting"  # the token itself is never echoed back


@override_settings(BROADCASTING=HS)
async def test_query_token_wins_over_header():
    query, header = encode_token("q"), encode_token("h")
    _, _, payload = await connect(
        BroadcastAuthMiddleware(EchoApp()),
        f"/ws?auth_token={query}",
        headers=[(b"authorization", f"Bearer {header}".encode())],
    )
    assert payload["user_id"] == "q"


# -- refused handshakes ---------------------------------------------------------------------------
def _expired_token():
    now = int(time.time())
    return pyjwt.encode(
        {"sub": "1", "aud": "websocket", "iat": now - 120, "exp": now - 60}, SECRET, algorithm="HS256"
    )


@override_settings(BROADCASTING=HS)
@pytest.mark.parametrize(
    ("kind", "code"),
    [("garbage", 4001), ("wrong-secret", 4001), ("expired", 4011)],
)
@pytest.mark.parametrize("where", ["query", "header", "subprotocol"])
async def test_bad_token_refuses_the_handshake_without_calling_the_app(kind, code, where):
    token = {
        "garbage": "not-a-token",
        "wrong-secret": pyjwt.encode(
            {"sub": "1", "aud": "websocket", "exp": int(time.time()) + 60}, "x" * 64, algorithm="HS256"
        ),
        "expired": _expired_token(),
    }[kind]
    app = EchoApp()
    kwargs = {
        "query": {"path": f"/ws?auth_token={token}"},
        "header": {"headers": [(b"authorization", f"Bearer {token}".encode())]},
        "subprotocol": {"subprotocols": ["broadcasting", f"bearer.{token}"]},
    }[where]
    connected, close_code, _ = await connect(BroadcastAuthMiddleware(app), **kwargs)
    assert not connected
    assert close_code == code
    assert app.calls == 0


async def test_http_scopes_pass_through():
    from channels.testing import HttpCommunicator

    app = EchoApp()
    response = await HttpCommunicator(BroadcastAuthMiddleware(app), "GET", "/").get_response(timeout=3)
    assert response["status"] == 204 and app.calls == 1


# -- session authentication -----------------------------------------------------------------------
@pytest.fixture
def session_cookie(transactional_db):
    user = User.objects.create_user("sessionuser", first_name="Sue", is_staff=True)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@override_settings(BROADCASTING=HS)
async def test_session_user_becomes_the_identity(session_cookie):
    connected, _, payload = await connect(
        BroadcastAuthMiddlewareStack(EchoApp()), headers=[(b"cookie", session_cookie)]
    )
    assert connected
    assert payload["scope_user"] == "sessionuser"
    assert payload["roles"] == ["admin", "staff"]
    assert payload["name"] == "Sue"
    assert payload["user_id"] is not None


@override_settings(BROADCASTING={**HS, "SESSION_AUTH": False})
async def test_session_auth_can_be_switched_off(session_cookie):
    _, _, payload = await connect(
        BroadcastAuthMiddlewareStack(EchoApp()), headers=[(b"cookie", session_cookie)]
    )
    assert payload["user_id"] is None


@override_settings(BROADCASTING=HS)
async def test_token_wins_over_session(session_cookie):
    token = encode_token("jwt-user")
    _, _, payload = await connect(
        BroadcastAuthMiddlewareStack(EchoApp()),
        f"/ws?auth_token={token}",
        headers=[(b"cookie", session_cookie)],
    )
    assert payload["user_id"] == "jwt-user"


@override_settings(BROADCASTING=HS)
async def test_stale_session_cookie_is_anonymous(transactional_db):
    _, _, payload = await connect(
        BroadcastAuthMiddlewareStack(EchoApp()),
        headers=[(b"cookie", b"sessionid=doesnotexist0123456789abcdef")],
    )
    assert payload["user_id"] is None and payload["scope_user"] == ""


@override_settings(BROADCASTING=HS)
async def test_works_under_channels_auth_middleware_stack(session_cookie):
    from channels.auth import AuthMiddlewareStack

    _, _, payload = await connect(
        AuthMiddlewareStack(BroadcastAuthMiddleware(EchoApp())), headers=[(b"cookie", session_cookie)]
    )
    assert payload["scope_user"] == "sessionuser" and payload["roles"] == ["admin", "staff"]


# -- origin policy --------------------------------------------------------------------------------
CORS = ["https://app.example.com", "http://localhost:3000", "https://*.example.net"]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://app.example.com:443", True),
        ("HTTPS://APP.EXAMPLE.COM", True),
        ("http://app.example.com", False),
        ("https://app.example.com:8443", False),
        ("https://evil.example.com", False),
        ("https://app.example.com.evil.io", False),
        ("http://localhost:3000", True),
        ("http://localhost:3001", False),
        ("https://a.example.net", True),
        ("https://a.b.example.net", True),
        ("https://example.net", False),
        ("null", False),
        ("garbage", False),
    ],
)
def test_cors_allowed_origins(origin, allowed):
    with override_settings(BROADCASTING={"CORS_ALLOWED_ORIGINS": CORS}):
        assert origin_allowed(origin) is allowed


def test_star_allows_every_origin_and_no_origin_is_allowed_by_default():
    with override_settings(BROADCASTING={"CORS_ALLOWED_ORIGINS": ["*"]}):
        assert origin_allowed("https://anything.io") and origin_allowed("null")
    with override_settings(BROADCASTING={"CORS_ALLOWED_ORIGINS": CORS}):
        assert origin_allowed(None)
    with override_settings(BROADCASTING={"CORS_ALLOWED_ORIGINS": CORS, "REQUIRE_ORIGIN": True}):
        assert not origin_allowed(None)


@override_settings(BROADCASTING={}, ALLOWED_HOSTS=["example.com", ".example.org"], DEBUG=False)
@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://example.com", True),
        ("http://example.com:8000", True),
        ("https://www.example.org", True),
        ("https://example.org", True),
        ("https://evil.com", False),
        ("http://localhost:8000", False),
    ],
)
def test_empty_cors_list_falls_back_to_allowed_hosts(origin, allowed, monkeypatch):
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    from django_broadcasting.conf import reload_broadcasting_settings

    reload_broadcasting_settings()
    assert origin_allowed(origin) is allowed


@override_settings(BROADCASTING={}, ALLOWED_HOSTS=[], DEBUG=True)
def test_debug_with_empty_allowed_hosts_allows_localhost(monkeypatch):
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    from django_broadcasting.conf import reload_broadcasting_settings

    reload_broadcasting_settings()
    assert origin_allowed("http://localhost:5173") and origin_allowed("http://127.0.0.1:8000")
    assert not origin_allowed("https://example.com")


@override_settings(BROADCASTING={**HS, "CORS_ALLOWED_ORIGINS": ["https://app.example.com"]})
async def test_disallowed_origin_refuses_the_handshake():
    app = EchoApp()
    connected, code, _ = await connect(
        BroadcastAuthMiddleware(app), headers=[(b"origin", b"https://evil.example.com")]
    )
    assert not connected and code == ORIGIN_FORBIDDEN_CODE and app.calls == 0
    connected, _, payload = await connect(
        BroadcastAuthMiddleware(app), headers=[(b"origin", b"https://app.example.com")]
    )
    assert connected and payload["user_id"] is None
    connected, _, _ = await connect(BroadcastAuthMiddleware(app))  # no Origin: a native client
    assert connected


@override_settings(
    BROADCASTING={**HS, "CORS_ALLOWED_ORIGINS": ["https://app.example.com"], "REQUIRE_ORIGIN": True}
)
async def test_require_origin_refuses_clients_without_one():
    connected, code, _ = await connect(BroadcastAuthMiddleware(EchoApp()))
    assert not connected and code == ORIGIN_FORBIDDEN_CODE


# -- HTTP requests (the /broadcasting/auth and trigger views) -------------------------------------
@override_settings(BROADCASTING=HS)
def test_identity_from_request_bearer_session_and_anonymous(db, rf):
    from django.contrib.auth.models import AnonymousUser

    from django_broadcasting.auth.identity import identity_from_request
    from django_broadcasting.exceptions import AuthenticationFailed

    request = rf.get("/", HTTP_AUTHORIZATION=f"Bearer {encode_token('bearer-user')}")
    assert identity_from_request(request).user_id == "bearer-user"

    request = rf.get("/", HTTP_AUTHORIZATION="Bearer nonsense")
    with pytest.raises(AuthenticationFailed):
        identity_from_request(request)

    request = rf.get("/")
    request.user = User.objects.create_user("viewer")
    identity = identity_from_request(request)
    assert identity.user_id == str(request.user.pk) and identity.user is request.user

    request = rf.get("/", HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")  # not ours: falls through
    request.user = AnonymousUser()
    assert not identity_from_request(request).is_authenticated

    with override_settings(BROADCASTING={**HS, "SESSION_AUTH": False}):
        request = rf.get("/")
        request.user = User.objects.get(username="viewer")
        assert not identity_from_request(request).is_authenticated


@override_settings(BROADCASTING=HS)
async def test_aidentity_from_request_and_aget_user(transactional_db, rf):
    from asgiref.sync import sync_to_async

    from django_broadcasting.auth.identity import aget_user, aidentity_from_request

    user = await sync_to_async(User.objects.create_user)("asyncviewer")
    request = rf.get("/")

    async def auser():
        return user

    request.auser = auser
    identity = await aidentity_from_request(request)
    assert identity.user_id == str(user.pk)
    assert await aget_user(identity) is user

    jwt_identity = await aidentity_from_request(
        rf.get("/", HTTP_AUTHORIZATION=f"Bearer {encode_token(user.pk)}")
    )
    assert jwt_identity.user is None
    assert (await aget_user(jwt_identity)).pk == user.pk
    # A subject that is not a local user (or not even a valid pk) gives None, not an error.
    from django_broadcasting.auth.identity import Identity

    assert await aget_user(Identity(user_id="not-an-int")) is None
    assert await aget_user(Identity(user_id="999999")) is None
    assert await aget_user(Identity()) is None
