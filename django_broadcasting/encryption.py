"""End-to-end encrypted channels (``private-encrypted-*``), as Pusher specifies them.

The server holds one master key (``PUSHER_ENCRYPTION_MASTER_KEY_BASE64``: base64 of 32 random
bytes). A channel's key is ``SHA-256(channel name bytes + master key bytes)``: ``/broadcasting/auth``
hands it to an authorized client as ``shared_secret`` (base64), and publishers seal each event
with it (NaCl ``secretbox``, XSalsa20-Poly1305). An encrypted event's ``data`` is the JSON
string ``{"nonce": <base64 of 24 bytes>, "ciphertext": <base64>}``, the plaintext being the
event's JSON payload: the format of the Pusher SDKs (PyPI ``pusher`` with
``encryption_master_key_base64``, ``pusher-http-php``...), which pusher-js decrypts.

What the server relays is the ciphertext: events that an SDK sealed reach the server sealed
and are passed on as they are; this project's own publishers (``broadcast_to_channel``,
events, the ``pusher`` driver, the CLI) seal their events once per message at publish time
(``seal_messages``), before the backend sees them.

The master key is read through ``encryption_master_key()`` only, so a deployment serving
several apps can give each its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .exceptions import BroadcastingImproperlyConfigured, InvalidMessage
from .messages import app_local_name

if TYPE_CHECKING:
    from .messages import Message

__all__ = [
    "ENCRYPTED_PREFIX",
    "EncryptionNotConfigured",
    "decrypt",
    "encrypt",
    "encryption_master_key",
    "is_encrypted_channel",
    "is_sealed",
    "seal_messages",
    "shared_secret",
    "shared_secret_base64",
]

#: Every end-to-end encrypted channel's name starts with this (Pusher's naming).
ENCRYPTED_PREFIX = "private-encrypted-"
NONCE_SIZE = 24  # secretbox nonce
MAC_SIZE = 16  # Poly1305 tag at the head of each ciphertext


class EncryptionNotConfigured(BroadcastingImproperlyConfigured):
    """An encrypted channel is used but ``PUSHER_ENCRYPTION_MASTER_KEY_BASE64`` is not set."""


def is_encrypted_channel(name: str) -> bool:
    """Return whether ``name`` is an end-to-end encrypted channel (``private-encrypted-...``).

    ``name`` may be a hub name of another app's channel (``#app-<id>:private-encrypted-...``).
    """
    return app_local_name(name).startswith(ENCRYPTED_PREFIX)


def encryption_master_key(app: Any = None) -> bytes | None:
    """Return the master key (32 bytes) of ``app``, or None when its encrypted channels are off.

    ``app`` is the Pusher app being served (``pusher_apps.PusherApp``; the default app when None):
    with ``PUSHER_APPS`` each app has its own ``encryption_master_key``, else the default app's is
    ``PUSHER_ENCRYPTION_MASTER_KEY_BASE64`` (validated when read: base64 of exactly 32 bytes, so a
    bad key raises ``ImproperlyConfigured`` here).
    """
    from .pusher_apps import default_app

    return (app or default_app()).encryption_master_key


def _require_key(master_key: bytes | None, channel: str) -> bytes:
    if master_key is None:
        master_key = encryption_master_key()
    if master_key is None:
        raise EncryptionNotConfigured(
            f"Channel {channel!r} is end-to-end encrypted but PUSHER_ENCRYPTION_MASTER_KEY_BASE64 is not "
            "set; generate a key with `openssl rand -base64 32`."
        )
    return master_key


def shared_secret(channel: str, master_key: bytes | None = None) -> bytes:
    """Return the 32-byte key of ``channel``: SHA-256 of the channel name followed by the master key."""
    key = _require_key(master_key, channel)
    return hashlib.sha256(channel.encode() + key).digest()


def shared_secret_base64(channel: str, master_key: bytes | None = None) -> str:
    """Return ``shared_secret`` in base64: the ``shared_secret`` of a ``/broadcasting/auth`` answer."""
    return base64.b64encode(shared_secret(channel, master_key)).decode()


def _secretbox(key: bytes) -> Any:
    try:
        import nacl.secret
    except ImportError:  # pragma: no cover - PyNaCl is a dependency of the encryption extra
        raise BroadcastingImproperlyConfigured(
            "End-to-end encrypted channels need PyNaCl: pip install 'django-broadcasting[encryption]'."
        ) from None
    return nacl.secret.SecretBox(key)


def encrypt(channel: str, plaintext: str, master_key: bytes | None = None) -> dict[str, str]:
    """Seal ``plaintext`` for ``channel``; return ``{"nonce", "ciphertext"}`` (base64), as Pusher SDKs do."""
    box = _secretbox(shared_secret(channel, master_key))
    import nacl.utils

    nonce = nacl.utils.random(NONCE_SIZE)
    sealed = box.encrypt(plaintext.encode(), nonce)
    return {
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(sealed.ciphertext).decode(),
    }


def decrypt(channel: str, payload: Mapping[str, Any] | str, master_key: bytes | None = None) -> str:
    """Open a sealed payload (``{"nonce", "ciphertext"}``, or its JSON) of ``channel``; return the plaintext.

    Raise ``InvalidMessage`` when the payload is malformed or was not sealed with this channel's key.
    """
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            raise InvalidMessage("An encrypted payload is a JSON object {nonce, ciphertext}.") from None
    if not is_sealed(payload):
        raise InvalidMessage("An encrypted payload is a JSON object {nonce, ciphertext} (base64).")
    box = _secretbox(shared_secret(channel, master_key))
    from nacl.exceptions import CryptoError

    try:
        return box.decrypt(
            base64.b64decode(payload["ciphertext"]), base64.b64decode(payload["nonce"])
        ).decode()
    except (CryptoError, UnicodeDecodeError):
        raise InvalidMessage(f"The payload was not encrypted with the key of channel {channel!r}.") from None


def is_sealed(data: Any) -> bool:
    """Return whether ``data`` has the shape of a sealed payload: base64 ``nonce`` (24 bytes) and ``ciphertext``."""
    if not isinstance(data, Mapping):
        return False
    nonce, ciphertext = data.get("nonce"), data.get("ciphertext")
    if not isinstance(nonce, str) or not isinstance(ciphertext, str):
        return False
    try:
        return (
            len(base64.b64decode(nonce, validate=True)) == NONCE_SIZE
            and len(base64.b64decode(ciphertext, validate=True)) >= MAC_SIZE
        )
    except (binascii.Error, ValueError):
        return False


def seal_messages(messages: Sequence[Message]) -> Sequence[Message]:
    """Return ``messages`` with every event on an encrypted channel sealed (each once).

    Messages that are sealed already (``message.encrypted``: relayed from an SDK or another
    publisher) are left as they are. Each is sealed with the key of the app its channel belongs to
    (``PUSHER_APPS``: ``#app-<id>:private-encrypted-...``), for the name that app's clients use.
    Raise ``EncryptionNotConfigured`` before anything is sent when an encrypted channel is
    published to without a master key.
    """
    for m in messages:  # the common case: one substring test per message, nothing copied
        if ENCRYPTED_PREFIX in m.channel and not m.encrypted:
            break
    else:
        return messages
    from .pusher_apps import split_channel

    out = []
    for message in messages:
        if ENCRYPTED_PREFIX in message.channel and not message.encrypted:
            app, name = split_channel(message.channel)
            if name.startswith(ENCRYPTED_PREFIX):
                key = encryption_master_key(app)
                if key is None:  # this app's, not the default app's: never fall back to another key
                    raise EncryptionNotConfigured(
                        f"Channel {name!r} of Pusher app {app.id!r} is end-to-end encrypted but the app has "
                        "no encryption key (PUSHER_ENCRYPTION_MASTER_KEY_BASE64, or its "
                        "encryption_master_key_base64 in PUSHER_APPS)."
                    )
                sealed = encrypt(name, message.data_json, key)
                message = message.with_payload(sealed, json.dumps(sealed, separators=(",", ":")))
                message.encrypted = True
        out.append(message)
    return out
