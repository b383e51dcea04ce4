"""The example site's server side: chat posting, sign-up event, notifications, dashboard metrics."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from django_broadcasting.auth.identity import ANONYMOUS, Identity
from django_broadcasting.authorization import ChannelKind, aauthorize
from example_project.chat.models import Message, Room
from example_project.demo import metrics
from example_project.demo.events import UserRegisteredEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", password="pw")


@pytest.fixture
def room():
    return Room.objects.create(name="Lobby")


def post(client, room, body, **headers):
    return client.post(
        f"/chat/{room.pk}/messages", data=json.dumps(body), content_type="application/json", headers=headers
    )


# -- chat -----------------------------------------------------------------------------------------
def test_message_is_saved_then_broadcast_after_commit(client, ada, room, broadcast_fake,
                                                      django_capture_on_commit_callbacks):  # fmt: skip
    client.force_login(ada)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post(client, room, {"message": "  hello  "}, **{"X-Socket-ID": "123.456"})
        # Saved, and nothing sent until the transaction commits.
        assert response.status_code == 201
        broadcast_fake.assert_nothing_broadcast()
    for callback in callbacks:
        callback()
    saved = Message.objects.get()
    assert saved.body == "hello" and saved.user == ada
    broadcast_fake.assert_broadcast_on(f"presence.chat.{room.pk}", event="ChatMessage", count=1)
    message = broadcast_fake.messages[0]
    assert message.data == response.json() == saved.to_json()
    assert message.data["username"] == "ada" and message.data["message"] == "hello"
    # The sender's socket is skipped: its page shows the message from the response.
    assert message.socket_id == "123.456"


def test_rolled_back_message_is_never_broadcast(
    ada, room, broadcast_fake, django_capture_on_commit_callbacks
):
    from example_project.chat.events import ChatMessageEvent

    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                ChatMessageEvent(Message.objects.create(room=room, user=ada, body="x")).dispatch()
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    broadcast_fake.assert_nothing_broadcast()


@pytest.mark.parametrize(
    "body", [{"message": ""}, {"message": "   "}, {"message": 5}, {}, {"message": "x" * 2001}]
)
def test_bad_messages_are_refused(client, ada, room, body, broadcast_fake):
    client.force_login(ada)
    assert post(client, room, body).status_code == 400
    assert not Message.objects.exists()
    broadcast_fake.assert_nothing_broadcast()


def test_chat_needs_login_and_an_existing_room(client, ada, room):
    assert post(client, room, {"message": "hi"}).status_code == 302  # to the login page
    client.force_login(ada)
    assert client.post("/chat/999/messages", {"message": "hi"}).status_code == 404
    assert client.get(f"/chat/{room.pk}/").status_code == 200


def test_room_list_creates_rooms(client, ada):
    client.force_login(ada)
    response = client.post("/chat/", {"name": "Games"})
    room = Room.objects.get(name="Games")
    assert response["Location"] == f"/chat/{room.pk}/"
    assert client.post("/chat/", {"name": ""}).status_code == 200  # the form again, with an error


# -- sign-up --------------------------------------------------------------------------------------
def test_signup_dispatches_user_registered(client, broadcast_fake, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/accounts/signup/",
            {
                "username": "grace",
                "email": "g@example.com",
                "password1": "a-Long-pass-42x",
                "password2": "a-Long-pass-42x",
            },
        )
    assert response.status_code == 302
    broadcast_fake.assert_broadcast_on("user.registered", event="UserRegistered", count=1)
    data = broadcast_fake.broadcasts("user.registered")[0].data
    assert set(data) == {"user_id", "name", "timestamp"}  # the e-mail stays out of a public channel
    assert data["name"] == "grace"
    # The welcome notification, on the new user's own channel.
    user_id = data["user_id"]
    broadcast_fake.assert_broadcast_on(f"user.{user_id}", event="notification", count=1)


def test_user_registered_event_has_the_documented_fields(event_fake):
    event = UserRegisteredEvent(user_id="7", email="a@b.c", name="Ada")
    assert event.event_name() == "UserRegistered" == event.broadcast_as()
    assert event.broadcast_on() == ["user.registered"]
    event.dispatch()
    event_fake.assert_dispatched("UserRegistered")


async def test_registrations_channel_is_public_despite_the_user_rule():
    # Without the example's public_channel(), the built-in user.{user_id} rule would claim it.
    auth = await aauthorize(ANONYMOUS, "user.registered")
    assert auth.kind is ChannelKind.PUBLIC


# -- notifications --------------------------------------------------------------------------------
def test_notification_goes_to_the_chosen_user_only(client, ada, django_user_model, broadcast_fake):
    bob = django_user_model.objects.create_user("bob", password="pw")
    client.force_login(ada)
    response = client.post("/notifications/", {"recipient": bob.pk, "title": "Hi", "message": "there"})
    assert response.status_code == 302
    broadcast_fake.assert_broadcast_count(1)
    broadcast_fake.assert_broadcast_on(f"user.{bob.pk}", event="notification", count=1)
    data = broadcast_fake.messages[0].data
    assert (data["title"], data["message"], data["action_url"]) == ("Hi", "there", "/notifications/")


def test_notification_form_errors(client, ada, broadcast_fake):
    client.force_login(ada)
    assert client.post("/notifications/", {"recipient": 999, "title": "x", "message": "y"}).status_code == 200
    broadcast_fake.assert_nothing_broadcast()


# -- dashboard --------------------------------------------------------------------------------------
def test_dashboard_is_for_staff(client, ada, django_user_model):
    client.force_login(ada)
    assert client.get("/dashboard/").status_code == 302
    staff = django_user_model.objects.create_user("root", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/dashboard/").status_code == 200


async def test_dashboard_channel_needs_the_admin_role():
    from django_broadcasting.exceptions import ChannelForbidden

    with pytest.raises(ChannelForbidden):
        await aauthorize(Identity(user_id="1"), "admin.dashboard")
    assert (
        await aauthorize(Identity(user_id="1", roles={"admin"}), "admin.dashboard")
    ).kind is ChannelKind.PRIVATE


def test_metrics_have_the_documented_fields():
    data = metrics.collect_metrics()
    assert set(data) == {"cpu", "memory", "disk", "active_users", "requests_per_minute", "timestamp"}
    for key in ("cpu", "memory", "disk"):
        assert 0 <= data[key] <= 100


async def test_publish_metrics_sends_metrics_update(broadcast_fake):
    await metrics.apublish_metrics()
    broadcast_fake.assert_broadcast_on("admin.dashboard", event="metrics_update", count=1)


def test_metrics_interval_setting(monkeypatch):
    monkeypatch.setenv("DEMO_METRICS_INTERVAL", "0.5")
    assert metrics.interval() == 0.5
    monkeypatch.setenv("DEMO_METRICS_INTERVAL", "nope")
    assert metrics.interval() == 2.0
