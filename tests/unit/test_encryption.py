"""End-to-end encrypted channels: keys, sealing, naming and the /broadcasting/auth answer.

The PyPI ``pusher`` SDK is the reference: its ``generate_shared_secret``, ``encrypt`` and
``authenticate`` must agree with what this project computes.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pusher
import pytest
from django.test import override_settings
from pusher.crypto import encrypt as sdk_encrypt
from pusher.crypto import generate_shared_secret

from django_broadcasting.auth.identity import Identity
from django_broadcasting.auth.jwt import encode_token
from django_broadcasting.authorization import (
    ChannelKind,
    aauthorize,
    canonical_name,
    channel_kind,
    pusher_name,
    registry,
)
from django_broadcasting.broadcasting import publish
from django_broadcasting.conf import broadcasting_settings
from django_broadcasting.drivers import memory
from django_broadcasting.drivers.memory import MemoryDriver
from django_broadcasting.encryption import (
    EncryptionNotConfigured,
    decrypt,
    encrypt,
    encryption_master_key,
    is_sealed,
    seal_messages,
    shared_secret,
    shared_secret_base64,
)
from django_broadcasting.exceptions import (
    BroadcastingImproperlyConfigured,
    ChannelForbidden,
    InvalidChannelName,
    InvalidMessage,
)
from django_broadcasting.messages import Message, transport_payload

MASTER = bytes(range(32))
MASTER_B64 = base64.b64encode(MASTER).decode()
JWT = "unit-test-jwt-secret-0123456789abcdef0123"
KEYED = {"PUSHER_ENCRYPTION_MASTER_KEY_BASE64": MASTER_B64, "JWT_SECRET": JWT}
USER5 = Identity(user_id="5")


@pytest.fixture(autouse=True)
def isolated_registry():
    saved = registry.snapshot()
    yield
    registry.restore(saved)


# -- settings --------------------------------------------------------------------------------------
def test_master_key_setting_is_validated_without_echoing_the_key(monkeypatch):
    with override_settings(BROADCASTING={}):
        monkeypatch.delenv("PUSHER_ENCRYPTION_MASTER_KEY_BASE64", raising=False)
        assert encryption_master_key() is None
    with override_settings(BROADCASTING={"PUSHER_ENCRYPTION_MASTER_KEY_BASE64": MASTER_B64}):
        assert encryption_master_key() == MASTER
    short = base64.b64encode(b"x" * 16).decode()
    for bad, why in ((short, "exactly 32 bytes, not 16"), ("not base64!!", "not valid base64")):
        with override_settings(BROADCASTING={"PUSHER_ENCRYPTION_MASTER_KEY_BASE64": bad}):
            with pytest.raises(BroadcastingImproperlyConfigured, match=why) as info:
                encryption_master_key()
            assert bad not in str(info.value)


def test_master_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("PUSHER_ENCRYPTION_MASTER_KEY_BASE64", MASTER_B64)
    with override_settings(BROADCASTING={}):
        assert encryption_master_key() == MASTER
    broadcasting_settings.reload()


# -- keys and sealing, against the Pusher SDK --------------------------------------------------------
def test_shared_secret_is_the_sha256_of_name_then_master_key_as_the_sdk_computes_it():
    channel = "private-encrypted-user.5"
    expected = hashlib.sha256(channel.encode() + MASTER).digest()
    assert shared_secret(channel, MASTER) == expected == generate_shared_secret(channel.encode(), MASTER)
    assert shared_secret_base64(channel, MASTER) == base64.b64encode(expected).decode()


def test_sdk_authenticate_gives_the_same_shared_secret():
    client = pusher.Pusher(app_id="1", key="k", secret="s", encryption_master_key_base64=MASTER_B64)
    answer = client.authenticate("private-encrypted-user.5", "1.1")
    sdk_secret = answer["shared_secret"]
    sdk_secret = sdk_secret.decode() if isinstance(sdk_secret, bytes) else sdk_secret
    assert sdk_secret == shared_secret_base64("private-encrypted-user.5", MASTER)


def test_what_the_sdk_seals_opens_here_and_the_reverse():
    channel = "private-encrypted-orders.1"
    plaintext = json.dumps({"total": 42, "text": "héllo"})
    sealed_by_sdk = sdk_encrypt(channel, plaintext, MASTER)
    assert is_sealed(sealed_by_sdk)
    assert decrypt(channel, sealed_by_sdk, MASTER) == plaintext
    mine = encrypt(channel, plaintext, MASTER)
    assert set(mine) == {"nonce", "ciphertext"} and len(base64.b64decode(mine["nonce"])) == 24
    assert decrypt(channel, json.dumps(mine), MASTER) == plaintext
    assert mine != encrypt(channel, plaintext, MASTER)  # a fresh nonce each time
    with pytest.raises(InvalidMessage, match="not encrypted with the key"):
        decrypt("private-encrypted-orders.2", mine, MASTER)  # another channel, another key


@pytest.mark.parametrize(
    "data",
    [
        None,
        "text",
        {"nonce": "x"},
        {"nonce": "!!", "ciphertext": "AAAA"},
        {"nonce": "AAAA", "ciphertext": "AAAA"},
    ],
)
def test_is_sealed_refuses_what_is_not_a_sealed_payload(data):
    assert not is_sealed(data)


@override_settings(BROADCASTING=KEYED)
def test_seal_messages_seals_encrypted_channels_once_and_leaves_others():
    plain = Message("general", "news", {"n": 1})
    secret = Message("private-encrypted-user.5", "news", {"n": 2})
    sealed = seal_messages([plain, secret])
    assert sealed[0] is plain
    assert sealed[1].encrypted and is_sealed(sealed[1].data)
    assert json.loads(decrypt("private-encrypted-user.5", sealed[1].data_json)) == {"n": 2}
    assert seal_messages(sealed)[1] is sealed[1]  # never sealed twice
    # The transport keeps the mark, so the server relays it as it is.
    again = Message.from_transport(json.loads(sealed[1].transport_json))
    assert again.encrypted and again.data_json == sealed[1].data_json
    assert Message.from_publisher(json.loads(sealed[1].transport_json)).encrypted


def test_publishing_to_an_encrypted_channel_without_a_key_raises_before_sending(monkeypatch):
    monkeypatch.delenv("PUSHER_ENCRYPTION_MASTER_KEY_BASE64", raising=False)
    driver = MemoryDriver("memory")
    with override_settings(BROADCASTING={}):
        with pytest.raises(EncryptionNotConfigured, match="PUSHER_ENCRYPTION_MASTER_KEY_BASE64"):
            publish(Message.for_channels(["general", "private-encrypted-user.5"], "e", {}), driver)
    assert memory.outbox == []


@override_settings(BROADCASTING=KEYED)
def test_publish_seals_what_the_backend_receives():
    driver = MemoryDriver("memory")
    publish(Message.for_channels(["private-encrypted-user.5", "user.5"], "e", {"secret": 1}), driver)
    by_channel = {m.channel: m for m in memory.outbox}
    assert by_channel["user.5"].data == {"secret": 1}
    sealed = by_channel["private-encrypted-user.5"]
    assert "secret" not in sealed.data_json
    assert json.loads(decrypt("private-encrypted-user.5", sealed.data)) == {"secret": 1}


# -- names and authorization ----------------------------------------------------------------------------
def test_an_encrypted_channel_is_a_channel_of_its_own():
    assert canonical_name("private-encrypted-user.5") == "private-encrypted-user.5"
    assert canonical_name("private-user.5") == "user.5"
    assert channel_kind("private-encrypted-user.5") is ChannelKind.PRIVATE
    assert pusher_name("private-encrypted-user.5") == "private-encrypted-user.5"


@pytest.mark.parametrize(
    "bad", ["private-encrypted-", "private-encrypted-presence-chat.1", "private-encrypted-private-x"]
)
def test_bad_encrypted_names(bad):
    with pytest.raises(InvalidChannelName):
        canonical_name(bad)


@override_settings(BROADCASTING=KEYED)
async def test_the_rule_of_x_authorizes_private_encrypted_x():
    auth = await aauthorize(USER5, "private-encrypted-user.5")
    assert auth.channel == "private-encrypted-user.5" and auth.kind is ChannelKind.PRIVATE
    with pytest.raises(ChannelForbidden):
        await aauthorize(USER5, "private-encrypted-user.6")
    with pytest.raises(ChannelForbidden):
        await aauthorize(USER5, "private-encrypted-no-rule-here")
    registry.register("lobby", public=True)
    with pytest.raises(ChannelForbidden, match="public"):
        await aauthorize(USER5, "private-encrypted-lobby")


async def test_encrypted_channels_are_refused_without_a_master_key(monkeypatch):
    monkeypatch.delenv("PUSHER_ENCRYPTION_MASTER_KEY_BASE64", raising=False)
    with override_settings(BROADCASTING={}):
        with pytest.raises(ChannelForbidden, match="PUSHER_ENCRYPTION_MASTER_KEY_BASE64"):
            await aauthorize(USER5, "private-encrypted-user.5")


# -- /broadcasting/auth ---------------------------------------------------------------------------------
def _auth(client, channel, user="5"):
    return client.post(
        "/broadcasting/auth",
        {"socket_id": "123.456", "channel_name": channel},
        HTTP_AUTHORIZATION=f"Bearer {encode_token(user)}",
    )


@override_settings(BROADCASTING=KEYED)
def test_broadcasting_auth_answers_the_shared_secret(client, db):
    response = _auth(client, "private-encrypted-user.5")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (
        body["shared_secret"]
        == base64.b64encode(hashlib.sha256(b"private-encrypted-user.5" + MASTER).digest()).decode()
    )
    assert body["auth"].count(":") == 1
    assert "shared_secret" not in _auth(client, "private-user.5").json()
    assert _auth(client, "private-encrypted-user.6").status_code == 403


def test_broadcasting_auth_refuses_encrypted_channels_without_a_key(client, db, monkeypatch):
    monkeypatch.delenv("PUSHER_ENCRYPTION_MASTER_KEY_BASE64", raising=False)
    with override_settings(BROADCASTING={"JWT_SECRET": JWT}):
        response = _auth(client, "private-encrypted-user.5")
    assert response.status_code == 403
    assert "PUSHER_ENCRYPTION_MASTER_KEY_BASE64" in response.json()["error"]


def test_broadcast_fake_records_encrypted_channels_unsealed_without_a_key(monkeypatch):
    from django_broadcasting.testing import BroadcastFake

    monkeypatch.delenv("PUSHER_ENCRYPTION_MASTER_KEY_BASE64", raising=False)
    with override_settings(BROADCASTING={}), BroadcastFake() as fake:
        from django_broadcasting import broadcast_to_channel

        broadcast_to_channel("private-encrypted-user.5", "statement", {"balance": 1})
        fake.assert_broadcast_on("private-encrypted-user.5", event="statement", data={"balance": 1})


def test_system_check_e004_when_the_key_is_set_without_pynacl(monkeypatch):
    import sys

    from django_broadcasting.checks import _check_encryption

    with override_settings(BROADCASTING={"PUSHER_ENCRYPTION_MASTER_KEY_BASE64": MASTER_B64}):
        assert _check_encryption() == []
        monkeypatch.setitem(sys.modules, "nacl.secret", None)  # what an uninstalled package looks like
        [error] = _check_encryption()
        assert error.id == "django_broadcasting.E005" and "encryption" in error.hint
        with pytest.raises(BroadcastingImproperlyConfigured, match=r"django-broadcasting\[encryption\]"):
            encrypt("private-encrypted-x", "{}", MASTER)


@override_settings(BROADCASTING={**KEYED, "DEFAULT_DRIVER": "memory"})
def test_a_should_broadcast_event_on_an_encrypted_private_channel_is_sealed():
    from django_broadcasting import EncryptedPrivateChannel, Event, ShouldBroadcastNow

    class StatementReady(Event, ShouldBroadcastNow):
        def __init__(self, user_id):
            self.user_id = user_id

        def broadcast_on(self):
            return [EncryptedPrivateChannel(f"user.{self.user_id}")]

        def broadcast_with(self):
            return {"balance": 12}

    StatementReady(5).dispatch()
    [sent] = [m for m in memory.outbox if m.channel == "private-encrypted-user.5"]
    assert sent.encrypted and json.loads(decrypt(sent.channel, sent.data)) == {"balance": 12}


@override_settings(BROADCASTING=KEYED)
def test_a_backend_used_directly_still_seals():
    from django_broadcasting.backends.redis import RedisBackend

    [command] = RedisBackend("redis")._commands([Message("private-encrypted-user.5", "e", {"pin": 1234})])
    transported = transport_payload(
        next(arg for arg in command if isinstance(arg, str) and arg.startswith("{"))
    )
    assert transported["encrypted"] is True and "1234" not in transported["data_json"]


def test_each_app_seals_its_encrypted_channels_with_its_own_key():
    other = bytes(range(32, 64))
    apps = [
        {"id": "1", "key": "a", "secret": "secret-a", "encryption_master_key_base64": MASTER_B64},
        {
            "id": "2",
            "key": "b",
            "secret": "secret-b",
            "encryption_master_key_base64": base64.b64encode(other).decode(),
        },
        {"id": "3", "key": "c", "secret": "secret-c"},
    ]
    from django_broadcasting.pusher_apps import app_channel

    with override_settings(BROADCASTING={"PUSHER_APPS": apps, "JWT_SECRET": JWT}):
        name = "private-encrypted-user.5"
        first, second = seal_messages(
            [Message(name, "e", {"n": 1}), Message(app_channel("2", name), "e", {"n": 2})]
        )
        assert json.loads(decrypt(name, first.data_json, MASTER)) == {"n": 1}
        # The second app's clients know the channel by its own name and open it with their key.
        assert json.loads(decrypt(name, second.data_json, other)) == {"n": 2}
        with pytest.raises(InvalidMessage, match="not encrypted with the key"):
            decrypt(name, second.data_json, MASTER)
        with pytest.raises(EncryptionNotConfigured):
            seal_messages([Message(app_channel("3", name), "e", {})])
