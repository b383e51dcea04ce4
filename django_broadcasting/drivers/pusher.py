"""The ``pusher`` driver: publish through any Pusher-compatible HTTP API.

Targets Pusher itself, soketi, Laravel Reverb, or this project's own server (its
``/apps/{id}/events``). Settings, with Laravel's ``.env`` names as fall-backs::

    PUSHER_APP_ID / PUSHER_APP_KEY / PUSHER_APP_SECRET    the app's credentials
    PUSHER_HOST / PUSHER_PORT / PUSHER_SCHEME              where the API is (default: this
                                                           project's server, WEBSOCKET_HOST:PORT)

A driver's ``OPTIONS`` override them: ``app_id``, ``key``, ``secret``, ``host``, ``port``,
``scheme``, ``cluster`` (Pusher's hosted ``api-<cluster>.pusher.com`` over https), ``timeout``
and ``path`` (a prefix in front of ``/apps/...``, for servers mounted below one).

Events on end-to-end encrypted channels (``private-encrypted-*``) are sent sealed with
``PUSHER_ENCRYPTION_MASTER_KEY_BASE64`` (see ``encryption``): the receiving server relays them
without seeing their plaintext. Channels are sent by their Pusher names (``user.5`` goes out as ``private-user.5``), so Echo
clients of another server receive them; this server maps them back to one channel. Messages
that share event, payload and excluded socket go out as one ``events`` call (up to 100
channels); others as ``batch_events`` of up to 10.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async

from ..backends.webclient import request_json
from ..conf import broadcasting_settings
from ..encryption import seal_messages
from ..messages import Message
from ..pusher_signing import PusherApp, get_app, sign_request
from .base import BaseDriver

MAX_CHANNELS = 100
MAX_BATCH = 10


class PusherDriver(BaseDriver):
    """Publish messages with signed requests to a Pusher HTTP API."""

    name = "pusher"

    def describe(self) -> str:
        return f"the Pusher HTTP API at {self.origin_and_prefix()[0]}"

    def _option(self, key: str, default: Any) -> Any:
        value = self.options.get(key)
        return default if value in (None, "") else value

    @property
    def app(self) -> PusherApp:
        default = get_app()  # PUSHER_APP_* or the default app of PUSHER_APPS
        return PusherApp(
            str(self._option("app_id", default.id)),
            str(self._option("key", default.key)),
            str(self._option("secret", default.secret)),
        )

    def origin_and_prefix(self) -> tuple[str, str]:
        """``("scheme://host:port", "/path-prefix")`` of the API."""
        cluster = self._option("cluster", None)
        host = self._option("host", broadcasting_settings.PUSHER_HOST)
        scheme = self._option(
            "scheme", broadcasting_settings.PUSHER_SCHEME if host or not cluster else "https"
        )
        port = self._option("port", broadcasting_settings.PUSHER_PORT)
        if host is None and cluster:
            host = f"api-{cluster}.pusher.com"
        if host is None:
            # This project's own server (the same address the signed trigger uses).
            host = broadcasting_settings.WEBSOCKET_HOST
            if host in ("0.0.0.0", "::", ""):
                host = "127.0.0.1"
            port = port or broadcasting_settings.WEBSOCKET_PORT
        netloc = host if port is None else f"{host}:{port}"
        prefix = str(self._option("path", "")).strip("/")
        return f"{scheme}://{netloc}", f"/{prefix}" if prefix else ""

    def base_url(self) -> str:
        origin, prefix = self.origin_and_prefix()
        return origin + prefix

    @staticmethod
    def channel_name(canonical: str) -> str:
        from ..authorization import pusher_client_name

        return pusher_client_name(canonical)

    def requests(self, messages: Sequence[Message]) -> list[tuple[str, dict[str, Any]]]:
        """Group messages into ``(endpoint, body)`` pairs: ``events`` where they share a payload."""
        groups: dict[tuple[str, str, str | None], list[str]] = {}
        for message in messages:
            groups.setdefault((message.event, message.data_json, message.socket_id), []).append(
                self.channel_name(message.channel)
            )
        out: list[tuple[str, dict[str, Any]]] = []
        singles: list[dict[str, Any]] = []
        for (event, data_json, socket_id), channels in groups.items():
            if len(channels) == 1:
                item = {"name": event, "channel": channels[0], "data": data_json}
                if socket_id:
                    item["socket_id"] = socket_id
                singles.append(item)
                continue
            for start in range(0, len(channels), MAX_CHANNELS):
                body: dict[str, Any] = {
                    "name": event,
                    "channels": channels[start : start + MAX_CHANNELS],
                    "data": data_json,
                }
                if socket_id:
                    body["socket_id"] = socket_id
                out.append(("events", body))
        if len(singles) == 1:
            only = singles[0]
            out.append(
                (
                    "events",
                    {**{k: v for k, v in only.items() if k != "channel"}, "channels": [only["channel"]]},
                )
            )
        else:
            for start in range(0, len(singles), MAX_BATCH):
                out.append(("batch_events", {"batch": singles[start : start + MAX_BATCH]}))
        return out

    def _post(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        app = self.app
        raw = json.dumps(body, separators=(",", ":")).encode()
        origin, prefix = self.origin_and_prefix()
        base = origin + prefix
        path = f"{prefix}/apps/{app.id}/{endpoint}"
        url = f"{origin}{path}?{urlencode(sign_request('POST', path, body=raw, app=app))}"
        timeout = float(self._option("timeout", broadcasting_settings.TRIGGER_TIMEOUT))
        headers = {"Content-Type": "application/json"}
        return request_json(url, what=f"the Pusher API of {base}", timeout=timeout, data=raw, headers=headers)

    async def abroadcast(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        messages = seal_messages(messages)  # a no-op for what the publish path sealed already
        post = sync_to_async(self._post, thread_sensitive=False)
        for endpoint, body in self.requests(messages):
            await post(endpoint, body)
