"""What Redis carries: a JSON head, a newline, then the data as the publisher encoded it."""

from __future__ import annotations

import json

import pytest

from django_broadcasting.messages import Message, transport_payload
from tests.docs_blocks import python_blocks, run_block


def test_every_field_survives_the_round_trip():
    message = Message("presence-room.1", "typing", {"text": 'a\nb "quoted" é'}, socket_id="1.2", user_id=7)
    message.origin, message.encrypted = "whisper", True
    text = message.with_id("e1:5").transport_text
    head, _, data = text.partition("\n")
    assert data == message.data_json and "data_json" not in json.loads(head)
    payload = transport_payload(text)
    assert payload == {**message.with_id("e1:5").to_transport()}
    again = Message.from_publisher(payload)
    assert again.to_dict() == message.with_id("e1:5").to_dict()
    assert (again.socket_id, again.user_id, again.origin, again.encrypted) == ("1.2", 7, "whisper", True)


def test_data_with_raw_newlines_is_kept_byte_for_byte():
    # The Pusher HTTP API relays the data string a client sent: it may be pretty-printed JSON.
    data_json = '{\n  "a": 1,\n  "b": "x"\n}'
    message = Message("news", "e", json.loads(data_json), data_json=data_json)
    payload = transport_payload(message.transport_text)
    assert payload["data_json"] == data_json
    assert Message.from_publisher(payload).native_frame == message.native_frame


def test_the_earlier_single_object_form_is_read():
    old = json.dumps({"channel": "news", "event": "e", "data_json": "[1]", "timestamp": "t"})
    assert transport_payload(old)["data_json"] == "[1]"


@pytest.mark.parametrize(
    ("text", "error"),
    [("", ValueError), ("not json\n{}", ValueError), ('{"a":1} x\n{}', ValueError), ("[1]", TypeError)],
)
def test_a_malformed_text_is_refused(text, error):
    with pytest.raises(error):
        payload = transport_payload(text)
        Message.from_publisher(payload)


def test_the_scaling_page_example_runs():
    [block] = python_blocks("scaling.md", "wire")
    run_block(block, "scaling.md wire example", {})
