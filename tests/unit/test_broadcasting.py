"""The fluent PendingBroadcast, the helpers and BroadcastFacade, the X-Socket-ID middleware."""

from __future__ import annotations

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import path

from django_broadcasting import broadcasting as b
from django_broadcasting.context import SocketIdMiddleware, get_socket_id, socket_id_context
from django_broadcasting.drivers import memory
from django_broadcasting.drivers.null import NullDriver
from django_broadcasting.events import ShouldBroadcast
from django_broadcasting.exceptions import InvalidChannelName, InvalidDriver, InvalidMessage


@pytest.fixture(autouse=True)
def outbox(settings):
    settings.BROADCASTING = {"DEFAULT_DRIVER": "memory"}
    memory.reset_outbox()
    return memory.outbox


def sent(outbox):
    return [(m.channel, m.event, m.data) for m in outbox]


def test_fluent_chain_to_user(outbox):
    messages = b.broadcast().to_user(5).event("notification").with_data({"title": "Hi"}).send()
    assert sent(outbox) == [("user.5", "notification", {"title": "Hi"})]
    assert messages == outbox


def test_fluent_chain_combines_channels_and_aliases(outbox):
    (
        b.broadcast()
        .to_user("u1")
        .to_organization(9)
        .channel("general")
        .channels(["admin", "moderators"])
        .event("alert")
        .data({"level": "warning"})
        .send()
    )
    assert [m.channel for m in outbox] == ["user.u1", "org.9", "general", "admin", "moderators"]
    b.broadcast().channel("x").event("e").with_(a=1).with_data({"b": 2}, c=3).send()
    assert outbox[-1].data == {"b": 2, "c": 3}


async def test_asend(outbox):
    messages = await b.broadcast().channel("general").event("e").with_data({"n": 1}).asend()
    assert len(messages) == 1 and sent(outbox) == [("general", "e", {"n": 1})]


def test_event_name_is_required(outbox):
    with pytest.raises(InvalidMessage, match="event"):
        b.broadcast().channel("general").send()
    assert outbox == []


def test_a_channel_is_required():
    with pytest.raises(InvalidChannelName):
        b.broadcast().event("e").send()


def test_bad_channel_among_several_sends_nothing(outbox):
    with pytest.raises(InvalidChannelName):
        b.broadcast().channels(["ok", "not ok"]).event("e").send()
    assert outbox == []


def test_non_json_data_names_the_key(outbox):
    with pytest.raises(InvalidMessage, match="file"):
        b.broadcast().channel("general").event("e").with_data({"file": open}).send()
    assert outbox == []


def test_via_a_driver_alias_or_instance(outbox):
    b.broadcast().channel("general").event("e").via("null").send()
    assert outbox == []
    null = NullDriver("custom")
    b.broadcast().channel("general").event("e").via(null).send()
    assert outbox == []
    with pytest.raises(InvalidDriver, match="nope"):
        b.broadcast().channel("general").event("e").via("nope").send()


def test_to_others_explicit_request_and_context(outbox):
    b.broadcast().channel("c").event("e").to_others("1.2").send()
    request = RequestFactory().get("/", HTTP_X_SOCKET_ID="3.4")
    b.broadcast().channel("c").event("e").to_others(request).send()
    with socket_id_context("5.6"):
        b.broadcast().channel("c").event("e").to_others().send()
    b.broadcast().channel("c").event("e").to_others().send()
    b.broadcast().channel("c").event("e").to_others("bad id with spaces").send()
    assert [m.socket_id for m in outbox] == ["1.2", "3.4", "5.6", None, None]


def test_socket_id_middleware_sync():
    seen = []

    def view(request):
        seen.append(get_socket_id())
        return HttpResponse("ok")

    middleware = SocketIdMiddleware(view)
    middleware(RequestFactory().get("/", HTTP_X_SOCKET_ID="7.8"))
    middleware(RequestFactory().get("/"))
    assert seen == ["7.8", None]
    assert get_socket_id() is None


async def test_socket_id_middleware_async(outbox):
    async def view(request):
        await b.broadcast().channel("c").event("e").to_others().asend()
        return HttpResponse("ok")

    middleware = SocketIdMiddleware(view)
    await middleware(RequestFactory().get("/", HTTP_X_SOCKET_ID="9.1"))
    assert outbox[0].socket_id == "9.1"
    assert get_socket_id() is None


def test_helpers(outbox):
    b.broadcast_to_channel("general", "announcement", {"message": "Maintenance in 5 minutes"})
    b.broadcast_to_user("user123", "notification", {"title": "Welcome!"})
    b.broadcast_to_organization("org456", "update", {"type": "policy_change"})
    assert sent(outbox) == [
        ("general", "announcement", {"message": "Maintenance in 5 minutes"}),
        ("user.user123", "notification", {"title": "Welcome!"}),
        ("org.org456", "update", {"type": "policy_change"}),
    ]


async def test_async_helpers(outbox):
    await b.abroadcast_to_channel("general", "a", {})
    await b.abroadcast_to_user(1, "b", {})
    await b.abroadcast_to_organization(2, "c", {}, socket_id="1.1")
    assert [(m.channel, m.socket_id) for m in outbox] == [
        ("general", None),
        ("user.1", None),
        ("org.2", "1.1"),
    ]


def test_helpers_accept_model_like_objects(outbox):
    class User:
        pk = 12

    b.broadcast_to_user(User(), "e")
    assert outbox[0].channel == "user.12"


@pytest.mark.parametrize("user_id", [None, "", True, 1.5, ["x"]])
def test_bad_user_ids(user_id, outbox):
    with pytest.raises(InvalidMessage):
        b.broadcast_to_user(user_id, "e", {})
    assert outbox == []


def test_notify_user(outbox):
    b.notify_user("user123", "Order Update", "Shipped", "https://track.example.com")
    b.notify_user(5, "Welcome", "Registration successful")
    first, second = outbox
    assert (first.channel, first.event) == ("user.user123", "notification")
    assert first.data["title"] == "Order Update" and first.data["message"] == "Shipped"
    assert first.data["action_url"] == "https://track.example.com"
    assert first.data["timestamp"].endswith("Z")
    assert second.channel == "user.5" and second.data["action_url"] is None


@pytest.mark.parametrize(("title", "message"), [("", "m"), ("t", ""), (None, "m"), ("t", 5)])
def test_notify_user_rejects_empty_text(title, message, outbox):
    with pytest.raises(InvalidMessage):
        b.notify_user(1, title, message)
    assert outbox == []


def test_system_alert(outbox):
    b.system_alert("critical", "Database connection lost", True)
    b.system_alert("WARNING", "High CPU usage: 85.0%")
    first, second = outbox
    assert (first.channel, first.event) == ("admin", "system_alert")
    assert first.data["level"] == "critical" and first.data["action_required"] is True
    assert first.data["message"] == "Database connection lost" and "timestamp" in first.data
    assert second.data["level"] == "warning" and second.data["action_required"] is False


@pytest.mark.parametrize(
    ("level", "message"), [("fatal", "x"), ("", "x"), (None, "x"), ("info", ""), ("info", "  ")]
)
def test_system_alert_validates(level, message, outbox):
    with pytest.raises(InvalidMessage):
        b.system_alert(level, message)
    assert outbox == []


async def test_async_notify_and_alert(outbox):
    await b.anotify_user(1, "t", "m")
    await b.asystem_alert("info", "hello", channel="ops")
    assert [(m.channel, m.event) for m in outbox] == [("user.1", "notification"), ("ops", "system_alert")]


def test_facade(outbox):
    b.BroadcastFacade.to_user("user123").event("notification").with_data({"title": "Order Status"}).send()
    b.BroadcastFacade.channel("general").event("e").send()
    b.BroadcastFacade.channels(["admin", "moderators"]).event("alert").send()
    b.BroadcastFacade.to_organization(3).event("e").send()
    b.BroadcastFacade.notify_user("u", "t", "m", "/dashboard")
    b.BroadcastFacade.system_alert("critical", "Database connection lost", True)
    assert [(m.channel, m.event) for m in outbox] == [
        ("user.user123", "notification"),
        ("general", "e"),
        ("admin", "alert"),
        ("moderators", "alert"),
        ("org.3", "e"),
        ("user.u", "notification"),
        ("admin", "system_alert"),
    ]


async def test_facade_async_twins(outbox):
    await b.BroadcastFacade.anotify_user("u", "t", "m")
    await b.BroadcastFacade.asystem_alert("info", "x")
    await b.BroadcastFacade.to_user(1).event("e").asend()
    assert len(outbox) == 3


def test_broadcast_positional_form(outbox):
    b.broadcast("general", "announcement", {"x": 1}).send()
    assert sent(outbox) == [("general", "announcement", {"x": 1})]


def test_broadcast_an_event_object_without_listeners(outbox):
    class Shipped(ShouldBroadcast):
        broadcast_driver = "memory"

        def __init__(self, order_id, ok=True):
            self.order_id = order_id
            self.ok = ok

        def broadcast_on(self):
            return f"orders.{self.order_id}"

        def broadcast_when(self):
            return self.ok

    b.broadcast(Shipped(1)).to_others("1.1").send()
    assert b.broadcast(Shipped(2, ok=False)).send() == []
    assert [(m.channel, m.event, m.socket_id) for m in outbox] == [("orders.1", "Shipped", "1.1")]
    with pytest.raises(InvalidMessage):
        b.broadcast(object())


def test_top_level_lazy_exports():
    import django_broadcasting

    assert django_broadcasting.broadcast is b.broadcast
    assert django_broadcasting.BroadcastFacade is b.BroadcastFacade
    assert django_broadcasting.notify_user is b.notify_user


def _ship_view(request):
    b.broadcast().channel("orders.1").event("shipped").to_others().send()
    return HttpResponse("ok")


urlpatterns = [path("ship/", _ship_view)]


def test_to_others_through_the_middleware_stack(client, settings, outbox):
    settings.ROOT_URLCONF = __name__
    if "django_broadcasting.context.SocketIdMiddleware" not in settings.MIDDLEWARE:
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django_broadcasting.context.SocketIdMiddleware"]
    assert client.get("/ship/", headers={"X-Socket-ID": "123.456"}).status_code == 200
    assert client.get("/ship/").status_code == 200
    assert [m.socket_id for m in outbox] == ["123.456", None]


def test_every_public_name_resolves():
    import django_broadcasting

    for name in django_broadcasting.__all__:
        assert getattr(django_broadcasting, name) is not None, name
