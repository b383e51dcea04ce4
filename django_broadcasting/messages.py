"""The ``Message`` value: what one broadcast carries, validated once and encoded once.

A message is ``{"channel", "event", "data", "timestamp"}`` (ISO-8601 UTC), plus an ``id``
where history is kept and an optional ``socket_id`` to exclude (``to_others``). A broadcast
to several channels is one ``Message`` per channel; the payload is validated and
serialised exactly once, whatever the number of channels or subscribers.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from .conf import broadcasting_settings
from .exceptions import InvalidChannelName, InvalidMessage

_UNDECODED: Any = object()  # ``Message._data`` before a received payload is first decoded


def _plain(text: str) -> bool:
    """Whether ``text`` can sit between JSON quotes as it is: no quote, backslash or control
    character (``isprintable`` is also False for a few characters that need no escaping, which
    then merely take the slower, escaping path)."""
    return '"' not in text and "\\" not in text and text.isprintable()


def _json_string(value: str) -> str:
    """``value`` as a JSON string: quoted as it is when nothing in it needs escaping."""
    if _plain(value):
        return f'"{value}"'
    return json.dumps(value, ensure_ascii=False)


class _computed_once:
    """Like ``functools.cached_property`` without its lock (Python 3.11 takes one on every first
    access): the value is stored in the instance's ``__dict__``, which then shadows this."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value


# Letters, digits and the separators Laravel and Pusher use in channel names.
# "#" and "@" are allowed for Pusher's "#server-to-user-{id}" and "private-encrypted-" style names;
# "{" "}" never appear in a concrete name (they are pattern syntax).
_CHANNEL_RE = re.compile(r"[A-Za-z0-9_\-=@,.;#:]+")
_EVENT_RE = re.compile(r"[^\x00-\x1f]+")
#: Hub names of the channels of an app other than the default one start with this, then the
#: app id and ":" (see ``pusher_apps``); clients can never name such a channel themselves.
APP_NAMESPACE = "#app-"
MAX_EVENT_NAME_LENGTH = 200


def app_local_name(name: str) -> str:
    """Return a hub channel name as its app's clients know it (``#app-<id>:orders`` -> ``orders``)."""
    if name.startswith(APP_NAMESPACE):
        return name.partition(":")[2] or name
    return name


# Client JSON (frames, HTTP bodies) nests at most this deep: far beyond any real payload, far
# below the interpreter's recursion limit.
MAX_JSON_DEPTH = 64


def validate_channel_name(name: Any) -> str:
    """Return ``name`` if it is a legal channel name, else raise ``InvalidChannelName``."""
    if not isinstance(name, str) or not name:
        raise InvalidChannelName("Channel name must be a non-empty string.")
    limit = broadcasting_settings.MAX_CHANNEL_NAME_LENGTH
    if len(name) > limit and not (name.startswith(APP_NAMESPACE) and len(name.partition(":")[2]) <= limit):
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


_second: tuple[int, str] = (-1, "")


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
    """Return the current time as ISO-8601 UTC with milliseconds and a ``Z`` suffix."""
    global _second
    now = time.time()
    whole = int(now)
    second, text = _second
    if whole != second:  # the date and time of day change once a second; format them then
        text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, text)
    return f"{text}.{int((now - whole) * 1000):03d}Z"


_scan_json = json.JSONDecoder().scan_once


def native_frame(message: Message) -> str:
    """``message.native_frame``: its JSON frame for native subscribers, encoded on first use.

    A module function (the hub's encoder for native sockets) rather than a cached property: one
    call per broadcast instead of three.
    """
    cached = message.__dict__.get("native_frame")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    channel, event, timestamp, id, user_id = (
        message.channel, message.event, message.timestamp, message.id, message.user_id,
    )  # fmt: skip
    # The usual case in one test: names, time and id that need no escaping, no sender.
    plain = f"{channel}{event}{timestamp}{id or ''}"
    if user_id is None and '"' not in plain and "\\" not in plain and plain.isprintable():
        head = (
            f'{{"channel":"{channel}","event":"{event}","data":{message.data_json},"timestamp":"{timestamp}"'
        )
        frame = f'{head},"id":"{id}"}}' if id is not None else f"{head}}}"
    else:
        id_part = f',"id":{_json_string(id)}' if id is not None else ""
        if user_id is not None:
            id_part += (
                f',"user_id":{_json_string(user_id) if isinstance(user_id, str) else json.dumps(user_id)}'
            )
        frame = (
            f'{{"channel":{_json_string(channel)},"event":{_json_string(event)},'
            f'"data":{message.data_json},"timestamp":{_json_string(timestamp)}{id_part}}}'
        )
    message.__dict__["native_frame"] = frame
    return frame


def transport_payload(text: str) -> dict[str, Any]:
    """The transport dict of ``Message.transport_text`` (or of ``transport_json``, read as well).

    Raise ``ValueError`` on text that is not JSON, ``TypeError`` when its head is not an object.
    """
    head, newline, data_json = text.partition("\n")
    try:  # the C scanner directly: ``json.loads`` adds three Python calls per message
        payload, end = _scan_json(head, 0)
    except StopIteration:
        raise ValueError("a transport message is JSON") from None
    if end != len(head):
        raise ValueError("a transport message is one JSON value")
    if newline:
        payload["data_json"] = data_json
    elif not isinstance(payload, dict):
        raise TypeError("a transport message is a JSON object")
    return payload


#: The cached encodings of a message, which a copy with another id or payload must not keep.
_ENCODINGS = frozenset({"native_frame", "transport_json", "transport_text"})


class Message:
    """One event on one channel. Immutable once built; encodings are computed once and cached."""

    #: Where the broadcast came from ("cli", "event", "api", "trigger", "whisper", "presence"),
    #: shown by the admin's debug console; None for application code. Optional in the transport.
    origin: str | None = None
    #: True once the payload is sealed for an end-to-end encrypted channel (``encryption.py``):
    #: ``data`` is then ``{"nonce", "ciphertext"}`` and is relayed as it is, never sealed again.
    encrypted: bool = False
    # Defaults of what a transport dict may leave out (``from_publisher`` adopts the dict).
    id: str | None = None
    socket_id: str | None = None
    user_id: Any = None
    history: bool = True
    _data: Any = _UNDECODED

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
        history: bool = True,
    ) -> None:
        self.channel = validate_channel_name(channel)
        self.event = validate_event_name(event)
        self._data = {} if data is None else data
        self.timestamp = timestamp or utc_now_iso()
        self.id = id
        self.socket_id = socket_id or None
        self.user_id = user_id  # the sender of a client event (whisper) on a presence channel
        #: Whether the history keeps it (client events are not kept unless HISTORY_CLIENT_EVENTS says so).
        self.history = history
        # The payload's JSON is computed once and shared by every channel and encoder.
        self.data_json = data_json if data_json is not None else encode_json(self.data)
        limit = broadcasting_settings.MAX_PAYLOAD_SIZE
        if len(self.data_json) > limit:
            raise InvalidMessage(f"Broadcast data is {len(self.data_json)} bytes; the limit is {limit}.")

    @property
    def data(self) -> Any:
        """The payload; decoded from ``data_json`` on first use for messages received from a transport."""
        if self._data is _UNDECODED:
            self._data = json.loads(self.data_json)
        return self._data

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
        limit = broadcasting_settings.MAX_PAYLOAD_SIZE
        if len(data_json) > limit:
            raise InvalidMessage(f"Broadcast data is {len(data_json)} bytes; the limit is {limit}.")
        timestamp = utc_now_iso()
        socket_id = socket_id or None
        out = []
        for name in names:  # validated above: built without validating again
            message = cls.__new__(cls)
            message.__dict__.update(
                channel=name, event=event, _data=payload, timestamp=timestamp, id=None,
                socket_id=socket_id, user_id=None, data_json=data_json, history=True,
            )  # fmt: skip
            out.append(message)
        return out

    def _with_encrypted(self, encrypted: Any) -> Message:
        if encrypted is True:
            self.encrypted = True
        return self

    def _with_origin(self, origin: Any) -> Message:
        if origin is not None:
            self.origin = str(origin)[:32]
        return self

    def with_id(self, id: str) -> Message:
        """Return a copy carrying a history id (the copy re-uses the validated, encoded payload)."""
        copy = Message.__new__(Message)
        copy.__dict__.update({k: v for k, v in self.__dict__.items() if k not in _ENCODINGS})
        copy.id = id
        return copy

    def with_payload(self, data: Any, data_json: str) -> Message:
        """Return a copy carrying another payload (already encoded as ``data_json``)."""
        copy = Message.__new__(Message)
        copy.__dict__.update({k: v for k, v in self.__dict__.items() if k not in _ENCODINGS})
        copy._data = data
        copy.data_json = data_json
        return copy

    def to_dict(self) -> dict[str, Any]:
        """Return the client-facing message: channel, event, data, timestamp (+ id)."""
        out = {"channel": self.channel, "event": self.event, "data": self.data, "timestamp": self.timestamp}
        if self.id is not None:
            out["id"] = self.id
        return out

    def to_transport(self) -> dict[str, Any]:
        """Return the dict sent between processes (channel layer, Redis, HTTP trigger)."""
        out = self._transport_head()
        out["data_json"] = self.data_json
        return out

    def _transport_head(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel, "event": self.event, "timestamp": self.timestamp}
        if self.id is not None:
            out["id"] = self.id
        if self.socket_id:
            out["socket_id"] = self.socket_id
        if self.user_id is not None:
            out["user_id"] = self.user_id
        if self.origin is not None:
            out["origin"] = self.origin
        if self.encrypted:
            out["encrypted"] = True
        return out

    @classmethod
    def from_transport(cls, payload: Mapping[str, Any]) -> Message:
        """Rebuild a message sent with ``to_transport`` (or a plain ``to_dict`` payload)."""
        try:
            data_json = payload.get("data_json")
            data = parse_json(data_json) if data_json is not None else payload.get("data")
            return (
                cls(
                    payload["channel"],
                    payload["event"],
                    data,
                    timestamp=payload.get("timestamp"),
                    id=payload.get("id"),
                    socket_id=payload.get("socket_id"),
                    data_json=data_json,
                    user_id=payload.get("user_id"),
                )
                ._with_origin(payload.get("origin"))
                ._with_encrypted(payload.get("encrypted"))
            )
        except InvalidMessage:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidMessage(f"Malformed transport message: {exc}") from None

    @classmethod
    def from_publisher(cls, payload: Mapping[str, Any]) -> Message:
        """Rebuild a message that a publisher of this project built and validated (a transport).

        The receiving side of Redis and the channel layer: no validation again and no decoding
        of the payload, which most deliveries never need (the frames embed ``data_json``).
        Raise ``KeyError`` / ``TypeError`` on a payload that is not a transport dict. A transport
        dict is taken over, not copied: the caller hands it to the message and keeps no use of it.
        """
        channel, event, data_json = payload["channel"], payload["event"], payload.get("data_json")
        if not isinstance(channel, str) or not isinstance(event, str):
            raise TypeError("channel and event must be strings")
        message = cls.__new__(cls)
        if not isinstance(data_json, str) or type(payload) is not dict:  # a plain ``to_dict`` payload
            data = {} if payload.get("data") is None else payload["data"]
            message.__dict__.update(
                channel=channel, event=event, _data=data, data_json=encode_json(data),
                timestamp=payload.get("timestamp") or utc_now_iso(), id=payload.get("id"),
                socket_id=payload.get("socket_id") or None, user_id=payload.get("user_id"),
            )  # fmt: skip
        else:
            # A transport dict (the receiving side's own, fresh from decoding): it becomes the
            # message's attributes as it is; what it leaves out falls back to the class's
            # defaults (``id``, ``socket_id``, ``user_id``, ``_data`` undecoded, ...).
            message.__dict__ = payload
            if not payload.get("timestamp"):
                payload["timestamp"] = utc_now_iso()
            if "socket_id" in payload and not payload["socket_id"]:
                payload["socket_id"] = None
        origin = payload.get("origin")
        if origin is not None:
            message.origin = str(origin)[:32]
        if "encrypted" in payload:
            message.encrypted = payload["encrypted"] is True
        return message

    @_computed_once
    def transport_json(self) -> str:
        """``to_transport()`` as compact JSON, encoded once."""
        return json.dumps(self.to_transport(), separators=(",", ":"), ensure_ascii=False)

    @_computed_once
    def transport_text(self) -> str:
        """What Redis carries, encoded once: ``to_transport()`` without ``data_json`` as compact
        JSON, a newline, then ``data_json`` as it is (``transport_payload`` reads it back).

        The payload is never escaped into a JSON string, so writing and reading it costs nothing
        per byte of payload; compact JSON has no raw newline, so the first one ends the head.
        """
        head = json.dumps(self._transport_head(), separators=(",", ":"), ensure_ascii=False)
        return f"{head}\n{self.data_json}"

    @property
    def native_frame(self) -> str:
        """The JSON frame, encoded once and written to every native subscriber."""
        return native_frame(self)

    def __repr__(self) -> str:
        return f"<Message {self.event!r} on {self.channel!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return self.to_dict() == other.to_dict() and self.socket_id == other.socket_id

    __hash__ = None  # type: ignore[assignment]
