"""The fuzz harness: sends generated input to a live server and judges each answer.

A ``FrameSession`` keeps one WebSocket open (reconnecting when the server closes it, which some
inputs deserve) and, after each fuzzed frame, sends a marker frame whose answer is unique: once
the marker's answer arrives, every answer to the fuzzed frame has arrived too (frames are handled
in order). An answer that reports an internal error, a close code 1011, or no marker answer
within ``TIMEOUT`` seconds fails the example. HTTP inputs fail on any 5xx status.

``COUNTS`` records how many inputs each target sent; ``tests/fuzz/conftest.py`` prints them.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import os
import time
from typing import Any
from urllib.parse import quote

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from tests.integration.pusher_client import APP_ID, APP_KEY, APP_SECRET, PUSHER_ENV, channel_auth, user_auth
from tests.integration.wsclient import make_token

from .strategies import SIGN

TIMEOUT = 10.0
TRIGGER_SECRET = "fuzz-trigger-secret-0123456789abcdef"
FUZZ_ENV = {
    **PUSHER_ENV,
    "BROADCAST_TRIGGER_SECRET": TRIGGER_SECRET,
    # Every input reaches the code under test: no rate limit drops it first.
    "BROADCAST_CLIENT_RATE_LIMIT": "0",
    "PUSHER_CLIENT_EVENT_RATE_LIMIT": "0",
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "fuzz-" + "s3cret-0123456789abcdefghijklmnopqrstuvwxyz" * 2,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "BROADCAST_LOG_LEVEL": "WARNING",
}
COUNTS: collections.Counter[str] = collections.Counter()
STATUSES: collections.Counter[str] = collections.Counter()
CLOSES: collections.Counter[str] = collections.Counter()
STARTED = time.monotonic()


def budget(share: float) -> int:
    """The number of examples for a target: its ``share`` of ``FUZZ_EXAMPLES`` (default 300)."""
    total = int(os.environ.get("FUZZ_EXAMPLES") or 300)
    return max(5, round(total * share))


class FrameSession:
    """One WebSocket to ``url`` that survives the server closing it."""

    def __init__(self, url: str, protocol: str) -> None:
        self.url = url
        self.protocol = protocol
        self.ws: Any = None
        self.socket_id = ""
        self.marker = 0
        self.connect()

    def connect(self) -> None:
        # Entered by hand: the session outlives any one ``with`` block. No keepalive pings: the
        # markers keep the socket busy, and the ping thread's use of ``random`` would race with
        # Hypothesis generating the next input.
        self.ws = connect(
            self.url, open_timeout=TIMEOUT, max_size=None, close_timeout=1, ping_interval=None
        ).__enter__()
        first = json.loads(self.ws.recv(TIMEOUT))
        data = first.get("data")
        data = json.loads(data) if isinstance(data, str) else data
        self.socket_id = data["socket_id"]

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()

    def _marker_frame(self) -> tuple[str, str]:
        self.marker += 1
        if self.protocol == "native":
            return json.dumps(
                {"action": "ping", "data": {"fuzz_marker": self.marker}}
            ), f'"fuzz_marker":{self.marker}}}'
        channel = f"fuzz-marker.{self.marker}"
        return json.dumps({"event": "client-marker", "channel": channel, "data": {}}), f"'{channel}'"

    def sign(self, text: str | bytes) -> str | bytes:
        """Put a valid signature where the input asked for one (``SIGN``)."""
        if isinstance(text, bytes) or json.dumps(SIGN)[1:-1] not in text:
            return text
        try:
            body = json.loads(text)
            data = body["data"]
            encoded = isinstance(data, str)
            fields = json.loads(data) if encoded else data
        except (ValueError, KeyError, TypeError):
            return text
        if not isinstance(fields, dict) or fields.get("auth") != SIGN:
            return text
        if body.get("event") == "pusher:signin":
            user_data = fields.get("user_data")
            fields["auth"] = user_auth(self.socket_id, user_data if isinstance(user_data, str) else "")
        else:
            channel = fields.get("channel") if isinstance(fields.get("channel"), str) else ""
            channel_data = fields.get("channel_data")
            presence = channel.startswith(("presence-", "private-presence-", "presence."))
            fields["auth"] = channel_auth(
                self.socket_id, channel, channel_data if presence and isinstance(channel_data, str) else None
            )
        body["data"] = json.dumps(fields) if encoded else fields
        return json.dumps(body)

    def exchange(self, frame: str | bytes) -> list[str]:
        """Send ``frame`` then a marker; return the answers; raise ``AssertionError`` on a server fault."""
        frame = self.sign(frame)
        marker, expected = self._marker_frame()
        answers: list[str] = []
        try:
            self.ws.send(frame)
            self.ws.send(marker)
            deadline = time.monotonic() + TIMEOUT
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no answer to the marker within {TIMEOUT}s after {frame[:300]!r}")
                try:
                    answer = self.ws.recv(left)
                except TimeoutError:
                    continue
                if isinstance(answer, str) and expected in answer:
                    break
                answers.append(answer)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else 1006
            CLOSES[f"{self.protocol}:{code}"] += 1
            if code in (1011, 1006):
                raise AssertionError(f"server closed with {code} after {frame[:300]!r}") from None
            self.connect()
        for answer in answers:
            text = answer if isinstance(answer, str) else ""
            if '"code":4500' in text or "Internal server error" in text:
                raise AssertionError(f"internal error answering {frame[:300]!r}: {text[:300]}")
        return answers


# -- HTTP ---------------------------------------------------------------------------------------------
def bearer(user_id: int = 7) -> str:
    return f"Bearer {make_token(user_id, roles=['admin'])}"


def auth_headers(request: dict[str, Any], cookie: str | None) -> dict[str, Any]:
    headers: dict[str, Any] = {"Content-Type": request["content_type"]}
    authorization = request["authorization"]
    if authorization == "VALID":
        headers["Authorization"] = bearer()
    elif authorization is not None:
        headers["Authorization"] = authorization
    if request["csrf"] is not None:
        headers["X-CSRFToken"] = request["csrf"]
    if cookie:
        headers["Cookie"] = cookie
    return headers


def trigger_headers(body: bytes, mode: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if mode == "none":
        return headers
    ts = str(int(time.time()) - (3600 if mode == "stale" else 0))
    digest = hmac.new(TRIGGER_SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers["X-Broadcast-Timestamp"] = ts
    headers["X-Broadcast-Signature"] = "sha256=" + (digest if mode != "bad" else digest[::-1])
    return headers


def pusher_api_params(path: str, body: bytes, mode: str) -> dict[str, str]:
    """Query parameters of a Pusher HTTP API request, signed as the Pusher SDKs sign them."""
    if mode == "none":
        return {}
    params = {
        "auth_key": APP_KEY,
        "auth_timestamp": str(int(time.time()) - (3600 if mode == "stale" else 0)),
        "auth_version": "1.0",
        "body_md5": hashlib.md5(body).hexdigest(),  # noqa: S324 - the protocol's checksum
    }
    query = "&".join(f"{key}={params[key]}" for key in sorted(params))
    signature = hmac.new(APP_SECRET.encode(), f"POST\n{path}\n{query}".encode(), hashlib.sha256).hexdigest()
    params["auth_signature"] = signature if mode != "bad" else signature[::-1]
    return params


PUSHER_EVENTS_PATH = f"/apps/{APP_ID}/events"


def handshake_url(server: Any, shape: str, name: str, extra: str | None) -> str:
    if shape == "native-query":
        query = f"channel={quote(name, safe='')}"
        if extra is not None:
            query += f"&auth_token={quote(extra, safe='')}"
        return server.ws_url(f"/ws?{query}")
    if shape == "native-path":
        return server.ws_url(f"/ws/{quote(name, safe='') or 'x'}")
    protocol = "" if extra is None else f"?protocol={quote(extra, safe='')}"
    return server.ws_url(f"/app/{quote(name, safe='') or APP_KEY}{protocol}")


def try_handshake(url: str) -> str:
    """Open and close a socket at ``url``; the outcome, or ``AssertionError`` for a 5xx or a 1011."""
    try:
        with connect(url, open_timeout=TIMEOUT, close_timeout=1, ping_interval=None) as ws:
            try:
                ws.recv(0.2)
            except TimeoutError:
                pass
            return "open"
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status >= 500:
            raise AssertionError(f"handshake {url[:200]} answered {status}") from None
        return str(status)
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else 1006
        if code == 1011:
            raise AssertionError(f"handshake {url[:200]} closed with 1011") from None
        return f"closed {code}"
    except InvalidHandshake as exc:
        return type(exc).__name__
