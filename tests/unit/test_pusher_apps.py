"""PUSHER_APPS: validation naming the app and field, the default app, channel names per app, socket ids."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_broadcasting.authorization import canonical_name
from django_broadcasting.checks import check_settings
from django_broadcasting.conf import reload_broadcasting_settings
from django_broadcasting.exceptions import InvalidChannelName
from django_broadcasting.messages import Message
from django_broadcasting.pusher_apps import (
    app_by_id,
    app_by_key,
    app_channel,
    app_for_socket_id,
    default_app,
    get_apps,
    split_channel,
    unscoped,
)
from django_broadcasting.pusher_signing import get_app, sign_channel, verify_channel
from django_broadcasting.server.hub import Hub
from django_broadcasting.server.protocols.pusher import PUSHER

KEY = base64.b64encode(bytes(range(32))).decode()
APPS = [
    {"id": "1001", "key": "shop-key", "secret": "shop-secret"},
    {
        "id": "1002",
        "key": "chat-key",
        "secret": "chat-secret",
        "allowed_origins": "https://chat.example, https://m.chat.example",
        "max_connections": 50,
        "client_event_rate_limit": 3,
        "webhook_urls": "https://chat.example/hooks",
        "webhook_events": ["channel_occupied", "member_added"],
        "encryption_master_key_base64": KEY,
    },
]


@pytest.fixture(autouse=True)
def _fresh_settings():
    reload_broadcasting_settings()
    yield
    reload_broadcasting_settings()


def configure(settings, apps, **more):
    settings.BROADCASTING = {"PUSHER_APPS": apps, **more}


def test_without_pusher_apps_the_single_app_settings_are_the_default_app(settings):
    settings.BROADCASTING = {
        "PUSHER_APP_ID": "42",
        "PUSHER_APP_KEY": "k",
        "PUSHER_APP_SECRET": "s",
        "PUSHER_MAX_CONNECTIONS": 7,
    }
    app = default_app()
    assert (app.id, app.key, app.secret, app.max_connections, app.namespace) == ("42", "k", "s", 7, "")
    assert len(get_apps()) == 1 and get_app() is app and app_by_key("k") is app and app_by_key("x") is None


def test_apps_from_settings_with_their_own_fields(settings):
    configure(settings, APPS, PUSHER_CLIENT_EVENT_RATE_LIMIT=9)
    shop, chat = get_apps().apps
    assert default_app() is shop and shop.namespace == "" and chat.namespace == "#app-1002:"
    assert shop.client_event_rate_limit == 9 and shop.allowed_origins is None and shop.webhook_urls == ()
    assert chat.allowed_origins == ("https://chat.example", "https://m.chat.example")
    assert (chat.max_connections, chat.client_event_rate_limit) == (50, 3)
    assert chat.webhook_urls == ("https://chat.example/hooks",)
    assert chat.wants_webhook("member_added") and not chat.wants_webhook("channel_vacated")
    assert chat.encryption_master_key == bytes(range(32)) and shop.encryption_master_key is None
    assert app_by_id("1002") is chat and app_by_key("chat-key") is chat


def test_reverb_spellings_are_accepted(settings):
    configure(
        settings, [{"app_id": 7, "key": "k", "secret": "s", "capacity": None}, {**APPS[0], "capacity": 3}]
    )
    first, second = get_apps().apps
    assert (first.id, first.max_connections, second.max_connections) == ("7", 0, 3)


def test_apps_from_json_in_the_environment(settings, monkeypatch):
    settings.BROADCASTING = {}
    monkeypatch.setenv("PUSHER_APPS", json.dumps([APPS[0], {**APPS[1], "default": True}]))
    assert default_app().id == "1002" and default_app().namespace == ""
    assert app_by_id("1001").namespace == "#app-1001:"


@pytest.mark.parametrize(
    ("apps", "message"),
    [
        ([], "non-empty list"),
        ("[{", "not valid JSON"),
        ([{"id": "1", "key": "k"}], r"PUSHER_APPS\[0\] \(app id '1'\): 'secret' is required"),
        ([{"key": "k", "secret": "s"}], r"PUSHER_APPS\[0\]: 'id' is required"),
        (
            [APPS[0], {"id": "1001", "key": "other", "secret": "s"}],
            r"PUSHER_APPS\[1\] \(app id '1001'\): duplicate 'id'",
        ),
        (
            [APPS[0], {"id": "2", "key": "shop-key", "secret": "s"}],
            r"PUSHER_APPS\[1\] \(app id '2'\): duplicate 'key'.*PUSHER_APPS\[0\]",
        ),
        ([{**APPS[0], "colour": "red"}], r"app id '1001'\): unknown field\(s\) colour"),
        ([{**APPS[0], "id": "a:b"}], r"'id' 'a:b' must be 1 to 64 letters"),
        ([{**APPS[0], "max_connections": -1}], "'max_connections' must be a whole number"),
        ([{**APPS[0], "webhook_urls": ["ftp://x"]}], "is not an http"),
        ([{**APPS[0], "webhook_events": "channel_occupied,nope"}], "unknown event"),
        ([{**APPS[0], "encryption_master_key_base64": "c2hvcnQ="}], "must decode to 32 bytes"),
        ([{**APPS[0], "default": True}, {**APPS[1], "default": True}], "2 apps are marked 'default'"),
    ],
)
def test_bad_apps_raise_improperly_configured_naming_app_and_field(settings, apps, message):
    configure(settings, apps)
    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        get_apps()
    assert "shop-secret" not in str(caught.value)  # secrets are never echoed
    errors = check_settings()
    assert [e.id for e in errors] == ["django_broadcasting.E001"]


def test_channel_names_are_namespaced_per_app(settings):
    configure(settings, APPS)
    chat = app_by_id("1002")
    name = chat.hub_name("presence.room.1")
    assert name == "#app-1002:presence.room.1" and unscoped(name) == "presence.room.1"
    assert split_channel(name) == (chat, "presence.room.1")
    assert split_channel("orders") == (default_app(), "orders")
    assert chat.owns(name) and not chat.owns("orders") and default_app().owns("orders")
    assert app_channel("1002", "private-orders.1") == "#app-1002:orders.1"
    with pytest.raises(ImproperlyConfigured, match="No Pusher app"):
        app_channel("9", "orders")
    # A client can never name another app's channel, however it spells it.
    for spelled in (name, "private-#app-1002:orders", "#app-1001:orders"):
        with pytest.raises(InvalidChannelName, match="reserved"):
            canonical_name(spelled)
    # Pusher clients of the app see the name they subscribed with.
    frame = json.loads(PUSHER.encode(Message(name, "member_removed", {"id": "3"})))
    assert frame == {
        "event": "pusher_internal:member_removed",
        "channel": "presence-room.1",
        "data": '{"user_id":"3"}',
    }
    long_name = "x" * 164
    assert Message(chat.hub_name(long_name), "e", {}).channel.endswith(long_name)


def test_socket_ids_carry_the_app_when_several_are_configured(settings):
    hub = Hub()
    assert hub.new_socket_id(default_app()).count(".") == 1
    configure(settings, APPS)
    chat = app_by_id("1002")
    socket_id = hub.new_socket_id(chat)
    assert app_for_socket_id(socket_id) is chat
    assert app_for_socket_id(hub.new_socket_id(app_by_id("1001"))).id == "1001"
    signed = sign_channel(socket_id, "private-user.5", app=chat)
    assert verify_channel(signed, socket_id, "private-user.5", app=chat)
    assert not verify_channel(signed, socket_id, "private-user.5", app=default_app())


def test_django_code_publishes_to_another_apps_channel(settings):
    from django_broadcasting import broadcast_to_channel
    from django_broadcasting.drivers.memory import outbox

    configure(settings, APPS)
    settings.BROADCASTING = {**settings.BROADCASTING, "DEFAULT_DRIVER": "memory"}
    reload_broadcasting_settings()
    outbox.clear()
    broadcast_to_channel(app_channel("1002", "orders"), "OrderShipped", {"id": 1})
    broadcast_to_channel("orders", "OrderShipped", {"id": 2})
    assert [m.channel for m in outbox] == ["#app-1002:orders", "orders"]


def test_check_warns_when_single_app_settings_sit_next_to_pusher_apps(settings):
    configure(settings, APPS)
    assert "django_broadcasting.W009" not in [m.id for m in check_settings()]
    configure(settings, APPS, PUSHER_APP_KEY="old-key")
    warnings = [m for m in check_settings() if m.id == "django_broadcasting.W009"]
    assert warnings and "PUSHER_APP_KEY is not used" in warnings[0].msg
