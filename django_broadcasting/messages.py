"""The ``Message`` value: what one broadcast carries, validated once and encoded once.

A message is ``{"channel", "event", "data", "timestamp"}`` (ISO-8601 UTC), plus an ``id``
where history is kept and an optional ``socket_id`` to exclude (``to_others``). A broadcast
to several channels is one ``Message`` per channel; the payload is validated and
serialised exactly once, whatever the number of channels or subscribers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from .conf import broadcasting_settings
from .exceptions import InvalidChannelName, InvalidMessage

# Letters, digits and the separators Laravel, Pusher and the seed use in channel names.
# "#" and "@" are allowed for Pusher's "#server-to-user-{id}" and "private-encrypted-" style names;
# "{" "}" never appear in a concrete name (they are pattern syntax).
_CHANNEL_RE = re.compile(r"[A-Za-z0-9_\-=@,.;#:]+")
_EVENT_RE = re.compile(r"[^\x00-\x1f]+")
MAX_EVENT_NAME_LENGTH = 200
# Client JSON (frames, HTTP bodies) nests at most this deep: far beyond any real payload, far
# below the interpreter's recursion limit.
MAX_JSON_DEPTH = 64


def validate_channel_name(name: Any) -> str:
    """Return ``name`` if it is a legal channel name, else raise ``InvalidChannelName``."""
    if not isinstance(name, str) or not name:
        raise InvalidChannelName("Channel name must be a non-empty string.")
    limit = broadcasting_settings.MAX_CHANNEL_NAME_LENGTH
    if len(name) > limit:
        raise InvalidChannelName(f"Channel name is longer than {limit} characters.")
    if not _CHANNEL_RE.fullmatch(name):
        raise InvalidChannelName(
            f"Channel name {name!r} contains characters other than letters, digits and _-=@,.;#:"
        )
    return name


def validate_event_name(name: Any) -> str:
    """Return ``name`` if it is a legal event name, else raise ``InvalidMessage``."""
    if not isinstance(name, str) or not name:
        raise InvalidMessage("Event name must be a non-empty string.")
    if len(name) > MAX_EVENT_NAME_LENGTH or not _EVENT_RE.fullmatch(name):
        raise InvalidMessage(f"Event name {name[:40]!r} is too long or contains control characters.")
    return name


def _find_unserializable(value: Any, path: str) -> str | None:
    """Return the dotted path of the first value DjangoJSONEncoder cannot encode."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"{path}.{key!r}" if path else repr(key)
            found = _find_unserializable(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unserializable(item, f"{path}[{index}]")
            if found:
                return found
        return None
    try:
        json.dumps(value, cls=DjangoJSONEncoder)
    except (TypeError, ValueError):
        return path or "<data>"
    return None


def encode_json(value: Any) -> str:
    """Serialise ``value`` compactly, naming the offending key when it is not JSON."""
    try:
        return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        where = _find_unserializable(value, "")
        raise InvalidMessage(f"Broadcast data is not JSON-serializable at {where!r}: {exc}") from None


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than ``MAX_JSON_DEPTH`` (a ``ValueError``, like malformed JSON)."""


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Return True when ``value`` nests lists/dicts more than ``limit`` levels (iterative walk)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_json(text: str | bytes | bytearray, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode JSON from an untrusted peer; raise ``ValueError`` (``JSONTooDeep`` when nested too deep).

    ``json.loads`` recurses once per level and raises ``RecursionError`` (not ``ValueError``)
    around a thousand levels, which callers catching ``ValueError`` would let through as a crash
    with a traceback per frame. Documents nested deeper than ``max_depth`` are refused too, so no
    later encoder or walker recurses on a structure a client chose.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeep(f"JSON is nested deeper than {max_depth} levels.") from None
    if isinstance(value, (dict, list)):
        opening = text.count(b"[" if isinstance(text, (bytes, bytearray)) else "[")
        opening += text.count(b"{" if isinstance(text, (bytes, bytearray)) else "{")
        # Counting brackets (strings included) bounds the depth from above, at C speed: only
        # documents with more brackets than the limit pay for the walk.
        if opening > max_depth and _depth_exceeds(value, max_depth):
            raise JSONTooDeep(f"JSON is nested deeper than {max_depth} levels.")
    return value


def utc_now_iso() -> str:
    """Return the current time as ISO-8601 UTC with a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Message:
    """One event on one channel. Immutable once built; encodings are computed once and cached."""

    def __init__(
        self,
        channel: str,
        event: str,
        data: Any = None,
        *,
        timestamp: str | None = None,
        id: str | None = None,
        socket_id: str | None = None,
        data_json: str | None = None,
        user_id: str | None = None,
    ) -> None:
        self.channel = validate_channel_name(channel)
        self.event = validate_event_name(event)
        self.data = {} if data is None else data
        self.timestamp = timestamp or utc_now_iso()
        self.id = id
        self.socket_id = socket_id or None
        self.user_id = user_id  # the sender of a client event (whisper) on a presence channel
        # The payload's JSON is computed once and shared by every channel and encoder.
        self.data_json = data_json if data_json is not None else encode_json(self.data)
        limit = broadcasting_settings.MAX_PAYLOAD_SIZE
        if len(self.data_json) > limit:
            raise InvalidMessage(f"Broadcast data is {len(self.data_json)} bytes; the limit is {limit}.")

    @classmethod
    def for_channels(
        cls, channels: Iterable[str], event: str, data: Any = None, *, socket_id: str | None = None
    ) -> list[Message]:
        """Build one message per channel, validating every name before any is built."""
        names = list(dict.fromkeys(channels))
        if not names:
            raise InvalidChannelName("A broadcast needs at least one channel.")
        for name in names:
            validate_channel_name(name)
        validate_event_name(event)
        payload = {} if data is None else data
        data_json = encode_json(payload)
        timestamp = utc_now_iso()
        return [
            cls(name, event, payload, timestamp=timestamp, socket_id=socket_id, data_json=data_json)
            for name in names
        ]

    def with_id(self, id: str) -> Message:
        """Return a copy carrying a history id (the copy re-uses the encoded payload)."""
        return Message(
            self.channel,
            self.event,
            self.data,
            timestamp=self.timestamp,
            id=id,
            socket_id=self.socket_id,
            data_json=self.data_json,
            user_id=self.user_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the seed's client-facing message: channel, event, data, timestamp (+ id)."""
        out = {"channel": self.channel, "event": self.event, "data": self.data, "timestamp": self.timestamp}
        if self.id is not None:
            out["id"] = self.id
        return out

    def to_transport(self) -> dict[str, Any]:
        """Return the dict sent between processes (channel layer, Redis, HTTP trigger)."""
        out = {
            "channel": self.channel,
            "event": self.event,
            "data_json": self.data_json,
            "timestamp": self.timestamp,
        }
        if self.id is not None:
            out["id"] = self.id
        if self.socket_id:
            out["socket_id"] = self.socket_id
        if self.user_id is not None:
            out["user_id"] = self.user_id
        return out

    @classmethod
    def from_transport(cls, payload: Mapping[str, Any]) -> Message:
        """Rebuild a message sent with ``to_transport`` (or a plain ``to_dict`` payload)."""
        try:
            data_json = payload.get("data_json")
            data = parse_json(data_json) if data_json is not None else payload.get("data")
            return cls(
                payload["channel"],
                payload["event"],
                data,
                timestamp=payload.get("timestamp"),
                id=payload.get("id"),
                socket_id=payload.get("socket_id"),
                data_json=data_json,
                user_id=payload.get("user_id"),
            )
        except InvalidMessage:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidMessage(f"Malformed transport message: {exc}") from None

    @cached_property
    def native_frame(self) -> str:
        """The seed's JSON frame, encoded once and written to every native subscriber."""
        id_part = f',"id":{json.dumps(self.id)}' if self.id is not None else ""
        if self.user_id is not None:
            id_part += f',"user_id":{json.dumps(self.user_id)}'
        return (
            f'{{"channel":{json.dumps(self.channel, ensure_ascii=False)},'
            f'"event":{json.dumps(self.event, ensure_ascii=False)},'
            f'"data":{self.data_json},"timestamp":"{self.timestamp}"{id_part}}}'
        )

    def __repr__(self) -> str:
        return f"<Message {self.event!r} on {self.channel!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.to_dict() == other.to_dict() and self.socket_id == other.socket_id

    __hash__ = None  # type: ignore[assignment]
