"""The Message value: validation of channel/event/data, one encoding, transport round trip."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid

import pytest

from django_broadcasting.exceptions import BroadcastError, InvalidChannelName, InvalidMessage
from django_broadcasting.messages import (
    MAX_JSON_DEPTH,
    JSONTooDeep,
    Message,
    encode_json,
    parse_json,
    validate_channel_name,
)


def test_to_dict_is_the_wire_format():
    message = Message("general", "notification", {"title": "Welcome!"})
    out = message.to_dict()
    assert set(out) == {"channel", "event", "data", "timestamp"}
    assert out["channel"] == "general" and out["event"] == "notification"
    assert out["data"] == {"title": "Welcome!"}
    parsed = datetime.datetime.fromisoformat(out["timestamp"].replace("Z", "+00:00"))
    assert parsed.utcoffset() == datetime.timedelta(0)
    assert out["timestamp"].endswith("Z")


def test_native_frame_is_json_of_to_dict():
    message = Message("user.5", "ping", {"n": 1, "s": "é"})
    assert json.loads(message.native_frame) == message.to_dict()
    with_id = message.with_id("17")
    assert json.loads(with_id.native_frame)["id"] == "17"


def test_data_defaults_to_empty_dict():
    assert Message("general", "e").data == {}


def test_django_types_are_encoded():
    data = {
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "price": decimal.Decimal("1.50"),
        "id": uuid.UUID(int=1),
    }
    message = Message("general", "e", data)
    decoded = json.loads(message.data_json)
    assert decoded["price"] == "1.50"
    assert decoded["when"].startswith("2024-01-02T03:04:05")


def test_non_json_data_names_the_offending_key():
    with pytest.raises(InvalidMessage) as info:
        Message("general", "e", {"ok": 1, "user": {"avatar": object()}})
    assert "user.avatar" in str(info.value)
    assert isinstance(info.value, BroadcastError) and info.value.code == 4002


def test_non_json_value_in_a_list_names_the_index():
    with pytest.raises(InvalidMessage, match=r"items\[1\]"):
        encode_json({"items": [1, {1, 2}]})


@pytest.mark.parametrize(
    "name",
    ["", None, 5, "has space", "emoji😀", "new\nline", "slash/name", "a{b}", "general\n", "admin.x\n", "\ngeneral"],
)  # fmt: skip
def test_illegal_channel_names(name):
    with pytest.raises(InvalidChannelName):
        Message(name, "e")


def test_over_long_channel_name(settings):
    settings.BROADCASTING = {"MAX_CHANNEL_NAME_LENGTH": 10}
    validate_channel_name("a" * 10)
    with pytest.raises(InvalidChannelName, match="longer than 10"):
        validate_channel_name("a" * 11)


@pytest.mark.parametrize(
    "name",
    ["general", "user.5", "private-orders.1", "presence-chat.1", "presence.chat.1", "team_a=b@c,d;e#f:g"],
)
def test_legal_channel_names(name):
    assert validate_channel_name(name) == name


@pytest.mark.parametrize("event", ["", None, "x" * 201, "bad\x00name", "client-x\n", "e\r"])
def test_illegal_event_names(event):
    with pytest.raises(InvalidMessage):
        Message("general", event)


def test_payload_size_limit(settings):
    settings.BROADCASTING = {"MAX_PAYLOAD_SIZE": 100}
    with pytest.raises(InvalidMessage, match="limit is 100"):
        Message("general", "e", {"blob": "x" * 200})


def test_for_channels_validates_all_before_building_any():
    with pytest.raises(InvalidChannelName):
        Message.for_channels(["good", "bad name"], "e", {})
    with pytest.raises(InvalidChannelName):
        Message.for_channels([], "e", {})


def test_for_channels_dedups_and_shares_one_encoding():
    messages = Message.for_channels(["a", "b", "a"], "e", {"x": 1}, socket_id="1.2")
    assert [m.channel for m in messages] == ["a", "b"]
    assert messages[0].data_json is messages[1].data_json
    assert messages[0].timestamp == messages[1].timestamp
    assert all(m.socket_id == "1.2" for m in messages)


def test_transport_round_trip():
    message = Message("general", "e", {"x": [1, 2]}, socket_id="9.9").with_id("3")
    copy = Message.from_transport(json.loads(json.dumps(message.to_transport())))
    assert copy == message
    assert copy.socket_id == "9.9" and copy.id == "3"


def test_malformed_transport_is_invalid_message():
    with pytest.raises(InvalidMessage):
        Message.from_transport({"event": "e"})


@pytest.mark.parametrize("text", ["[" * 8000 + "]" * 8000, '{"a":' * 2000 + "1" + "}" * 2000])
def test_parse_json_refuses_deep_nesting_as_a_value_error(text):
    with pytest.raises(JSONTooDeep, match="nested deeper"):
        parse_json(text)
    with pytest.raises(ValueError):  # callers that catch malformed JSON catch this too
        parse_json(text.encode())


def test_parse_json_depth_limit_is_exact():
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(at_limit) is not None
    with pytest.raises(JSONTooDeep):
        parse_json("[" + at_limit + "]")
    # Brackets inside strings and wide (not deep) documents are fine.
    assert parse_json(json.dumps({"s": "[" * 500, "l": [[1]] * 500}))["s"] == "[" * 500
