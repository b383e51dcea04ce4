"""HMAC signatures of the Pusher protocol, shared by the server, the HTTP views and the driver.

Three things are signed with the app secret (HMAC-SHA256, lowercase hex):

* a channel subscription: ``"<socket_id>:<channel>"``, plus ``":<channel_data>"`` for presence
  channels; the client sends ``"<key>:<signature>"`` in ``pusher:subscribe``;
* a user sign-in: ``"<socket_id>::user::<user_data>"`` (``pusher:signin``);
* an HTTP API request: ``"<METHOD>\\n<path>\\n<sorted query string>"`` where the query string
  holds every parameter except ``auth_signature`` (keys lowercased, ``key=value`` joined with
  ``&``, not URL-encoded) and ``body_md5`` is the MD5 of the body.

The app id, key and secret come from ``PUSHER_APP_ID`` / ``PUSHER_APP_KEY`` /
``PUSHER_APP_SECRET`` (settings or environment), or from each app of ``PUSHER_APPS`` (see
``pusher_apps``); every function takes the ``app`` to sign for, the default app when omitted.
Without a configured secret one is derived from Django's ``SECRET_KEY``, so one project's
processes agree; set it explicitly when another program (Laravel, a Pusher SDK) signs or verifies.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from collections.abc import Mapping

from .core.ids import SOCKET_ID_RE  # noqa: F401  (defined in core/ids.py; importable here as before)
from .pusher_apps import PusherApp, app_by_key, default_app

try:  # CPython's own MD5: no OpenSSL context to set up per call (the API checks one per request)
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - other interpreters
    _md5 = functools.partial(hashlib.md5, usedforsecurity=False)
_EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"  # MD5 of b"", the protocol's checksum of no body

AUTH_VERSION = "1.0"
#: How far an HTTP API request's ``auth_timestamp`` may be from the server's clock (Pusher: 600 s).
MAX_CLOCK_SKEW = 600


def app_secret() -> str:
    """Return the default app's secret (``PUSHER_APP_SECRET``, or one derived from ``SECRET_KEY``)."""
    return get_app().secret


def get_app(key: str | None = None) -> PusherApp:
    """Return the default app, or the app whose key is ``key`` (``RequestRefused`` 401 if none)."""
    if key is None:
        return default_app()
    app = app_by_key(key)
    if app is None:
        raise RequestRefused(401, "Unknown auth_key.")
    return app


class _HmacSha256:
    """HMAC-SHA256 with one secret, its padded key already hashed (RFC 2104).

    Copying the prepared inner and outer hashes costs about half of ``hmac.digest``, which
    sets up the key again on every call; the HTTP API verifies a signature per request.
    """

    __slots__ = ("inner", "outer")

    def __init__(self, secret: bytes) -> None:
        if len(secret) > 64:  # SHA-256's block size
            secret = hashlib.sha256(secret).digest()
        secret = secret.ljust(64, b"\0")
        self.inner = hashlib.sha256(secret.translate(_IPAD))
        self.outer = hashlib.sha256(secret.translate(_OPAD))

    def hexdigest(self, message: bytes) -> str:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@functools.lru_cache(maxsize=16)
def _hmac_for(secret: str) -> _HmacSha256:
    return _HmacSha256(secret.encode())


def hmac_hex(secret: str, text: str) -> str:
    """Return the lowercase hex HMAC-SHA256 of ``text``."""
    return _hmac_for(secret).hexdigest(text.encode())


def _signed(app: PusherApp, text: str) -> str:
    return f"{app.key}:{hmac_hex(app.secret, text)}"


def _matches(app: PusherApp, auth: object, text: str) -> bool:
    if not isinstance(auth, str):
        return False
    key, _, signature = auth.partition(":")
    expected = hmac_hex(app.secret, text)
    # Both comparisons run whatever the first one says (constant time, no early exit).
    key_ok = hmac.compare_digest(key.encode(), app.key.encode())
    sig_ok = hmac.compare_digest(signature.encode(), expected.encode())
    return key_ok and sig_ok


def channel_string(socket_id: str, channel: str, channel_data: str | None = None) -> str:
    return f"{socket_id}:{channel}" if channel_data is None else f"{socket_id}:{channel}:{channel_data}"


def sign_channel(
    socket_id: str, channel: str, channel_data: str | None = None, app: PusherApp | None = None
) -> str:
    """Return the ``"key:signature"`` that authorizes ``socket_id`` on ``channel``."""
    return _signed(app or get_app(), channel_string(socket_id, channel, channel_data))


def verify_channel(
    auth: object, socket_id: str, channel: str, channel_data: str | None = None, app: PusherApp | None = None
) -> bool:
    """Return whether ``auth`` is the app's signature of this subscription."""
    return _matches(app or get_app(), auth, channel_string(socket_id, channel, channel_data))


def user_string(socket_id: str, user_data: str) -> str:
    return f"{socket_id}::user::{user_data}"


def sign_user(socket_id: str, user_data: str, app: PusherApp | None = None) -> str:
    """Return the ``"key:signature"`` of a ``pusher:signin``."""
    return _signed(app or get_app(), user_string(socket_id, user_data))


def verify_user(auth: object, socket_id: str, user_data: str, app: PusherApp | None = None) -> bool:
    return _matches(app or get_app(), auth, user_string(socket_id, user_data))


# -- HTTP API --------------------------------------------------------------------------------
def query_string(params: Mapping[str, str]) -> str:
    """The canonical query string that API signatures cover (unencoded, sorted by key)."""
    items = sorted((k.lower(), str(v)) for k, v in params.items() if k.lower() != "auth_signature")
    return "&".join(f"{k}={v}" for k, v in items)


def api_string(method: str, path: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}\n{path}\n{query_string(params)}"


def sign_request(
    method: str,
    path: str,
    params: Mapping[str, str] | None = None,
    body: bytes = b"",
    app: PusherApp | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Return ``params`` plus the ``auth_*`` (and ``body_md5``) parameters that sign the request."""
    app = app or get_app()
    signed = {str(k): str(v) for k, v in (params or {}).items()}
    signed.update(
        auth_key=app.key,
        auth_timestamp=str(int(time.time()) if timestamp is None else timestamp),
        auth_version=AUTH_VERSION,
    )
    if body:
        signed["body_md5"] = hashlib.md5(body).hexdigest()  # noqa: S324 - the protocol's checksum
    signed["auth_signature"] = hmac_hex(app.secret, api_string(method, path, signed))
    return signed


class RequestRefused(Exception):
    """An HTTP API request whose signature does not check out; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def verify_request(
    method: str,
    paths: tuple[str, ...],
    params: Mapping[str, str],
    body: bytes,
    app: PusherApp | None = None,
) -> None:
    """Raise ``RequestRefused`` (401) unless the request is signed by the app and fresh.

    ``paths`` are the spellings of the request path to accept (decoded and raw), since clients
    sign the path they built, which a proxy or the server may have re-encoded.
    """
    app = app or get_app()
    params = {k.lower(): v for k, v in params.items()}
    missing = [name for name in ("auth_key", "auth_timestamp", "auth_signature") if not params.get(name)]
    if missing:
        raise RequestRefused(401, f"Missing authentication parameter(s): {', '.join(missing)}.")
    if not hmac.compare_digest(params["auth_key"].encode(), app.key.encode()):
        raise RequestRefused(401, "Unknown auth_key.")
    version = params.get("auth_version", AUTH_VERSION)
    if version != AUTH_VERSION:
        raise RequestRefused(401, f"Unsupported auth_version {version[:10]!r}; expected {AUTH_VERSION}.")
    try:
        timestamp = int(params["auth_timestamp"])
    except ValueError:
        raise RequestRefused(401, "auth_timestamp must be an integer (seconds since the epoch).") from None
    now = time.time()
    if abs(now - timestamp) > MAX_CLOCK_SKEW:
        raise RequestRefused(
            401,
            f"Timestamp expired: given timestamp {timestamp} not within {MAX_CLOCK_SKEW}s of server time {int(now)}.",
        )
    if body:
        expected_md5 = _md5(body).hexdigest()
        if not hmac.compare_digest(params.get("body_md5", "").encode(), expected_md5.encode()):
            raise RequestRefused(401, "body_md5 does not match the request body.")
    elif params.get("body_md5") and params["body_md5"] != _EMPTY_MD5:
        raise RequestRefused(401, "body_md5 does not match the (empty) request body.")
    signature = params["auth_signature"].encode()
    # The parameters are already lower-cased: sort and join them once for every path spelling.
    signed = "&".join([f"{k}={v}" for k, v in sorted(params.items()) if k != "auth_signature"])
    signer = _hmac_for(app.secret)
    prefix = method.upper() + "\n"
    ok = False
    for path in dict.fromkeys(paths):
        expected = signer.hexdigest(f"{prefix}{path}\n{signed}".encode()).encode()
        ok = hmac.compare_digest(signature, expected) or ok
    if not ok:
        raise RequestRefused(
            401, "Invalid signature: you should have sent HmacSHA256Hex(string_to_sign, secret)."
        )
