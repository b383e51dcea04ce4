"""Webhook settings, events, signatures and the sender's bounds (no I/O)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pusher
import pytest

from django_broadcasting.conf import WEBHOOK_EVENTS, broadcasting_settings, reload_broadcasting_settings
from django_broadcasting.exceptions import BroadcastingImproperlyConfigured
from django_broadcasting.webhooks import payloads, sign_body, webhook_targets
from django_broadcasting.webhooks.sender import MAX_BACKOFF, TargetSender, WebhookStats, backoff, redacted


@pytest.fixture(autouse=True)
def clean_settings(settings, monkeypatch):
    for name in ("PUSHER_WEBHOOK_URL", "PUSHER_WEBHOOK_EVENTS", "PUSHER_APP_KEY", "PUSHER_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    settings.BROADCASTING = {}
    reload_broadcasting_settings()
    yield
    reload_broadcasting_settings()


def test_no_url_means_no_targets():
    assert webhook_targets() == ()


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("PUSHER_WEBHOOK_URL", "https://example.com/pusher/webhooks?token=a,b")
    monkeypatch.setenv("PUSHER_WEBHOOK_EVENTS", "channel_occupied, channel_vacated")
    monkeypatch.setenv("PUSHER_APP_KEY", "k1")
    monkeypatch.setenv("PUSHER_APP_SECRET", "s1")
    reload_broadcasting_settings()
    (target,) = webhook_targets()
    assert target.url == "https://example.com/pusher/webhooks?token=a,b"  # one URL, commas and all
    assert target.events == {"channel_occupied", "channel_vacated"}
    assert (target.key, target.secret) == ("k1", "s1")


def test_settings_take_a_list_and_default_to_every_event(settings):
    settings.BROADCASTING = {"PUSHER_WEBHOOK_URL": ["http://a.test/h", "http://b.test/h"]}
    targets = webhook_targets()
    assert [t.url for t in targets] == ["http://a.test/h", "http://b.test/h"]
    assert all(t.events == set(WEBHOOK_EVENTS) for t in targets)
    assert set(WEBHOOK_EVENTS) == {
        "channel_occupied",
        "channel_vacated",
        "member_added",
        "member_removed",
        "client_event",
        "cache_miss",
    }


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("PUSHER_WEBHOOK_URL", "ftp://example.com/x", "not an http:// or https:// URL"),
        ("PUSHER_WEBHOOK_URL", ["http://ok.test/", "nope"], "'nope'"),
        ("PUSHER_WEBHOOK_URL", 5, "expected a URL"),
        ("PUSHER_WEBHOOK_EVENTS", "channel_occupied,channel_exploded", "channel_exploded"),
        ("WEBHOOK_QUEUE_SIZE", 0, "must be >= 1"),
    ],
)
def test_bad_values_name_the_setting(settings, key, value, fragment):
    settings.BROADCASTING = {key: value}
    with pytest.raises(BroadcastingImproperlyConfigured) as info:
        getattr(broadcasting_settings, key)
    assert key in str(info.value) and fragment in str(info.value)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("PUSHER_WEBHOOK_EVENTS", "member_added,bogus")
    reload_broadcasting_settings()
    with pytest.raises(BroadcastingImproperlyConfigured, match="PUSHER_WEBHOOK_EVENTS.*bogus"):
        broadcasting_settings.PUSHER_WEBHOOK_EVENTS


def test_signature_is_hex_hmac_sha256_of_the_raw_body_and_the_sdk_accepts_it(settings):
    settings.BROADCASTING = {
        "PUSHER_WEBHOOK_URL": "http://hooks.test/",
        "PUSHER_APP_KEY": "the-key",
        "PUSHER_APP_SECRET": "the-secret",
    }
    (target,) = webhook_targets()
    body = payloads.body([payloads.channel_event("channel_occupied", "news")])
    headers = target.sign(body)
    assert headers["X-Pusher-Key"] == "the-key"
    assert headers["X-Pusher-Signature"] == hmac.new(b"the-secret", body, hashlib.sha256).hexdigest()
    assert sign_body(body, "the-secret") == headers["X-Pusher-Signature"]
    sdk = pusher.Pusher(app_id="1", key="the-key", secret="the-secret")
    checked = sdk.validate_webhook(key="the-key", signature=headers["X-Pusher-Signature"], body=body.decode())
    assert checked["events"] == [{"name": "channel_occupied", "channel": "news"}]
    assert sdk.validate_webhook(key="the-key", signature="0" * 64, body=body.decode()) is None


def test_event_shapes_use_pusher_channel_names():
    assert payloads.channel_event("channel_vacated", "presence.chat.1") == {
        "name": "channel_vacated",
        "channel": "presence-chat.1",
    }
    assert payloads.member_event("member_added", "presence.chat.1", 5) == {
        "name": "member_added",
        "channel": "presence-chat.1",
        "user_id": "5",
    }
    event = payloads.client_event("presence.chat.1", "client-x", {"a": 1}, '{"a":1}', "1.2", "5")
    assert event == {
        "name": "client_event",
        "channel": "presence-chat.1",
        "event": "client-x",
        "data": '{"a":1}',
        "socket_id": "1.2",
        "user_id": "5",
    }
    assert "user_id" not in payloads.client_event("news", "client-x", "hi", '"hi"', "1.2", None)
    assert payloads.client_event("news", "client-x", "hi", '"hi"', "1.2", None)["data"] == "hi"
    body = json.loads(payloads.body([], time_ms=123))
    assert body == {"time_ms": 123, "events": []}


def test_backoff_retries_within_30_seconds():
    delays = [backoff(attempt) for attempt in range(1, 20)]
    assert all(0 < d <= MAX_BACKOFF < 30 for d in delays)
    assert delays[0] <= 1.0 and max(delays) > 8


def test_queue_is_bounded_and_drops_are_counted(settings):
    settings.BROADCASTING = {"PUSHER_WEBHOOK_URL": "http://hooks.test/", "WEBHOOK_QUEUE_SIZE": 3}
    (target,) = webhook_targets()
    stats = WebhookStats()
    sender = TargetSender(target, stats)
    for i in range(10):
        sender.enqueue({"name": "channel_occupied", "channel": f"c{i}"})
    assert [e["channel"] for e in sender.queue] == ["c7", "c8", "c9"]  # the oldest went first
    assert stats.events_dropped == 7 and stats.events_queued == 10 and sender.pending == 3


def test_stats_never_show_credentials_of_a_url():
    assert redacted("https://user:pw@hooks.test:8443/p/x?token=s3cret#f") == "https://hooks.test:8443/p/x"


def test_w008_warns_when_webhooks_are_signed_with_a_derived_secret(settings):
    from django_broadcasting.checks import _check_pusher_secret

    settings.BROADCASTING = {"PUSHER_WEBHOOK_URL": "https://hooks.test/"}
    [warning] = _check_pusher_secret()
    assert warning.id == "django_broadcasting.W008" and "PUSHER_WEBHOOK_URL" in warning.msg
    settings.BROADCASTING = {"PUSHER_WEBHOOK_URL": "https://hooks.test/", "PUSHER_APP_SECRET": "s"}
    assert _check_pusher_secret() == []
