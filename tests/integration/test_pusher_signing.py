"""Signatures and frames of the Pusher protocol, checked against the PyPI ``pusher`` SDK (no server needed)."""

from __future__ import annotations

import json
import time

import pusher
import pytest
from pusher.http import GET, POST, Request
from pusher.pusher_client import PusherClient

from django_broadcasting.messages import Message
from django_broadcasting.pusher_signing import (
    PusherApp,
    RequestRefused,
    app_secret,
    sign_channel,
    sign_request,
    sign_user,
    verify_channel,
    verify_request,
    verify_user,
)
from django_broadcasting.server.protocols.pusher import PUSHER, error_frame, event_frame, parse

APP = PusherApp("123456", "the-key", "the-secret")
SDK = pusher.Pusher(app_id=APP.id, key=APP.key, secret=APP.secret)


def test_channel_signatures_match_the_sdk():
    assert sign_channel("1.2", "private-user.5", app=APP) == SDK.authenticate("private-user.5", "1.2")["auth"]
    presence = SDK.authenticate("presence-chat.1", "1.2", {"user_id": "5", "user_info": {"name": "A"}})
    assert sign_channel("1.2", "presence-chat.1", presence["channel_data"], app=APP) == presence["auth"]
    assert verify_channel(presence["auth"], "1.2", "presence-chat.1", presence["channel_data"], app=APP)
    assert not verify_channel(presence["auth"], "1.3", "presence-chat.1", presence["channel_data"], app=APP)
    assert not verify_channel(presence["auth"], "1.2", "presence-chat.1", "{}", app=APP)
    assert not verify_channel("other-key:" + presence["auth"].split(":")[1], "1.2", "presence-chat.1",
                              presence["channel_data"], app=APP)  # fmt: skip
    assert not verify_channel(None, "1.2", "private-x", app=APP)


def test_user_signatures_match_the_sdk():
    signed = SDK.authenticate_user("7.8", {"id": "5"})
    assert sign_user("7.8", signed["user_data"], app=APP) == signed["auth"]
    assert verify_user(signed["auth"], "7.8", signed["user_data"], app=APP)
    assert not verify_user(signed["auth"], "7.8", '{"id":"6"}', app=APP)


@pytest.mark.parametrize("method", [GET, POST])
def test_sdk_requests_verify(method):
    params = {"name": "e", "channels": ["a"], "data": "{}"} if method == POST else {"info": "user_count"}
    request = Request(PusherClient(APP.id, APP.key, APP.secret), method, "/apps/123456/events", params)
    verify_request(method, ("/apps/123456/events",), request.query_params, request.body, APP)
    with pytest.raises(RequestRefused, match="Invalid signature"):
        verify_request(method, ("/apps/999/events",), request.query_params, request.body, APP)
    with pytest.raises(RequestRefused):
        verify_request(method, ("/apps/123456/events",), request.query_params, request.body + b" ", APP)


def test_request_freshness_version_and_key():
    body = b'{"a":1}'
    verify_request("POST", ("/p",), sign_request("POST", "/p", body=body, app=APP), body, APP)
    stale = sign_request("POST", "/p", body=body, app=APP, timestamp=int(time.time()) - 601)
    with pytest.raises(RequestRefused, match="Timestamp expired"):
        verify_request("POST", ("/p",), stale, body, APP)
    wrong_version = {**sign_request("POST", "/p", body=body, app=APP), "auth_version": "2.0"}
    with pytest.raises(RequestRefused, match="auth_version"):
        verify_request("POST", ("/p",), wrong_version, body, APP)
    other = PusherApp("1", "other", "s")
    with pytest.raises(RequestRefused, match="auth_key"):
        verify_request("POST", ("/p",), sign_request("POST", "/p", body=body, app=other), body, APP)
    with pytest.raises(RequestRefused, match="Missing"):
        verify_request("POST", ("/p",), {}, body, APP)


def test_secret_defaults_to_one_derived_from_secret_key(settings):
    settings.BROADCASTING = {}
    derived = app_secret()
    assert derived and derived != settings.SECRET_KEY
    settings.BROADCASTING = {"PUSHER_APP_SECRET": "explicit"}
    assert app_secret() == "explicit"


def test_encoder_double_encodes_and_maps_names_and_presence_events():
    frame = json.loads(PUSHER.encode(Message("user.5", "paid", {"n": 1})))
    assert frame == {"event": "paid", "channel": "private-user.5", "data": '{"n":1}'}
    added = json.loads(
        PUSHER.encode(Message("presence.chat.1", "member_added", {"id": "2", "info": {"a": 1}}))
    )
    assert added["event"] == "pusher_internal:member_added" and added["channel"] == "presence-chat.1"
    assert json.loads(added["data"]) == {"user_id": "2", "user_info": {"a": 1}}
    removed = json.loads(PUSHER.encode(Message("presence.chat.1", "member_removed", {"id": "2"})))
    assert removed["event"] == "pusher_internal:member_removed" and json.loads(removed["data"]) == {
        "user_id": "2"
    }
    whisper = json.loads(PUSHER.encode(Message("presence.chat.1", "client-typing", {"x": 1}, user_id="9")))
    assert whisper["user_id"] == "9" and whisper["event"] == "client-typing"
    assert json.loads(PUSHER.encode(Message("#server-to-user-5", "hi", {})))["channel"] == "#server-to-user-5"


def test_frames_and_parsing():
    assert json.loads(event_frame("pusher:pong")) == {"event": "pusher:pong", "data": "{}"}
    assert json.loads(error_frame(4001)) == {"event": "pusher:error", "data": {"code": 4001, "message": "Application does not exist."}}  # fmt: skip
    assert parse('{"event":"pusher:subscribe","data":{"channel":"a"}}', 1000) == ("pusher:subscribe", {"channel": "a"}, None)  # fmt: skip
    # Double-encoded data from clients is accepted too; client events keep their data as sent.
    assert parse('{"event":"pusher:subscribe","data":"{\\"channel\\":\\"a\\"}"}', 1000)[1] == {"channel": "a"}
    assert parse('{"event":"client-x","data":"text","channel":"c"}', 1000) == ("client-x", "text", "c")
    for bad in (None, "x" * 2000, "nope", "[]", "{}", '{"event":"e","channel":5}'):
        with pytest.raises(Exception) as info:
            parse(bad, 1000)
        assert type(info.value).__name__ == "PusherFrameError"


@pytest.mark.parametrize("secret", ["", "s", "x" * 64, "y" * 65, "z" * 200, "é" * 40])
def test_hmac_matches_the_standard_library(secret):
    import hashlib
    import hmac

    from django_broadcasting.pusher_signing import hmac_hex

    for text in ("", "abc", "POST\n/apps/1/events\nauth_key=k" * 20):
        assert hmac_hex(secret, text) == hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
