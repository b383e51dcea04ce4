"""Hypothesis strategies for what a hostile client sends: frames of both protocols and HTTP requests.

Each strategy mixes well-formed input (so the server's deeper paths run: subscriptions, presence,
client events, signed requests with odd payloads) with malformed input (wrong types, bad JSON,
deep nesting, oversized frames, control characters, non-ASCII digits, names ending in a newline).
A value ``SIGN`` in a field asks the sender to put a valid signature there, made for the actual
socket id and payload, so that signed code paths run with fuzzed data behind the signature.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import strategies as st

SIGN = "\x00sign\x00"  # replaced by a valid signature when the input is sent

NAME_CHARS = string.ascii_letters + string.digits + "_-=@,.;#:"
PREFIXES = [
    "", "private-", "presence-", "private-presence-", "presence.", "#server-to-user-",
    "private-encrypted-", "admin.", "admin", "user.", "private-user.", "presence-chat.", "presence.chat.",
    "team.", "org.", "notifications", "general", "h.",
]  # fmt: skip
ODD_NAMES = [
    "admin.x\n", "general\n", "\ngeneral", "private-", "presence-", "presence.", "#", "a" * 201,
    "user.1", "user.1\n", "private-user.1", "presence-chat.1", "chat.{id}", "admin.*", "ümlaut",
    "private-general", "general ", "", " ", "null", "#server-to-user-1", "#server-to-user-",
]  # fmt: skip

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=24),
)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def deep_json(draw: Any) -> str:
    """JSON nested from a few levels to far past the interpreter's recursion limit."""
    depth = draw(st.sampled_from([10, 63, 64, 65, 100, 990, 1000, 3000, 8000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = "1" if opener != "[" else ""
    return opener * depth + inner + closer * depth


channel_name = st.one_of(
    st.builds(lambda p, s: p + s, st.sampled_from(PREFIXES), st.text(alphabet=NAME_CHARS, max_size=24)),
    st.sampled_from(ODD_NAMES),
    st.text(max_size=30),
    st.integers(min_value=150, max_value=260).map(lambda n: "c" * n),
)
any_channel = st.one_of(channel_name, channel_name, json_leaf, json_value)
event_name = st.one_of(
    st.builds(lambda s: "client-" + s, st.text(max_size=20)),
    st.sampled_from(["client-typing", "client-x\n", "typing", "pusher:ping", "x" * 201, "\x00", ""]),
    st.text(max_size=30),
)
any_event = st.one_of(event_name, event_name, json_leaf)
history_id = st.one_of(
    st.builds(lambda a, b: f"{a}:{b}", st.text(max_size=12), st.text(max_size=6)),
    st.sampled_from(["x:²", "0:0", "abc:99999999999999999999", ":", "a:-1", "a:1\n"]),
    json_leaf,
)


def _frame_text(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


@st.composite
def native_frame(draw: Any) -> str | bytes:
    """One client frame for ``/ws``: mostly JSON objects with an action, sometimes anything at all."""
    kind = draw(st.integers(0, 19))
    if kind <= 11:
        action = draw(
            st.one_of(
                st.sampled_from(["ping", "subscribe", "unsubscribe", "whisper"]),
                st.sampled_from(
                    ["client-typing", "subscribe ", "PING", "__init__", "connect", "action_ping"]
                ),
                st.text(max_size=16),
                json_leaf,
            )
        )
        body: dict[str, Any] = {"action": action}
        for key, strategy in (
            ("channel", any_channel),
            ("event", any_event),
            ("data", json_value),
            ("last_id", history_id),
            ("since", history_id),
        ):
            if draw(st.booleans()):
                body[key] = draw(strategy)
        if draw(st.integers(0, 9)) == 0:
            body.update(draw(st.dictionaries(st.text(max_size=8), json_value, max_size=3)))
        return _frame_text(body)
    if kind == 12:
        return _frame_text(draw(json_value))
    if kind == 13:
        return draw(st.text(max_size=200))
    if kind == 14:
        return draw(st.binary(max_size=64))
    if kind == 15:
        return draw(deep_json())
    if kind == 16:
        return (
            _frame_text({"action": "ping", "data": json.loads("[" * 60 + "]" * 60)})
            if draw(st.booleans())
            else '{"action":"whisper","channel":"presence.chat.1","event":"x","data":'
            + draw(deep_json())
            + "}"
        )
    if kind == 17:
        size = draw(st.sampled_from([16_300, 16_385, 20_000, 40_000]))
        return _frame_text({"action": "ping", "data": "x" * size})
    if kind == 18:
        return draw(st.sampled_from(['{"action":NaN}', '{"action":"ping","data":Infinity}', "{}", "[]", "null",
                                     '{"action":"ping"', '{"action":"ping"}{"action":"ping"}', "\ufeff{}",
                                     '{"action":"subscribe","channel":"a","channel":"b"}']))  # fmt: skip
    return _frame_text({"action": "subscribe", "channel": draw(channel_name), "last_id": draw(history_id)})


@st.composite
def pusher_frame(draw: Any) -> str | bytes:
    """One client frame for ``/app/{key}``: Pusher events with fuzzed, sometimes validly signed, data."""
    kind = draw(st.integers(0, 19))
    if kind <= 12:
        event = draw(
            st.one_of(
                st.sampled_from(["pusher:ping", "pusher:pong", "pusher:subscribe", "pusher:unsubscribe"]),
                st.sampled_from(["pusher:signin", "pusher:subscribe", "client-typing", "client-", "pusher:"]),
                event_name,
                json_leaf,
            )
        )
        data: Any
        shape = draw(st.integers(0, 5))
        if shape <= 3:
            data = {}
            for key, strategy in (
                ("channel", any_channel),
                ("auth", st.one_of(st.just(SIGN), st.just(SIGN), st.text(max_size=40), json_leaf)),
                ("channel_data", st.one_of(json_value.map(_frame_text), st.text(max_size=40), json_value)),
                ("user_data", st.one_of(json_value.map(_frame_text), st.text(max_size=40), json_value)),
            ):
                if draw(st.booleans()):
                    data[key] = draw(strategy)
            if shape == 3:
                data = _frame_text(data)  # double-encoded, as some clients send it
        elif shape == 4:
            data = draw(json_value)
        else:
            data = draw(deep_json())
        body: dict[str, Any] = {"event": event, "data": data}
        if draw(st.booleans()):
            body["channel"] = draw(any_channel)
        return _frame_text(body)
    if kind == 13:
        return _frame_text(draw(json_value))
    if kind == 14:
        return draw(st.text(max_size=200))
    if kind == 15:
        return draw(st.binary(max_size=64))
    if kind == 16:
        return draw(deep_json())
    if kind == 17:
        size = draw(st.sampled_from([16_300, 16_385, 20_000, 40_000]))
        return _frame_text({"event": "client-x", "channel": "private-user.1", "data": "x" * size})
    if kind == 18:
        channel = draw(channel_name)
        user = draw(st.one_of(st.text(max_size=10), json_leaf))
        info = draw(json_value)
        return _frame_text(
            {
                "event": "pusher:subscribe",
                "data": {"channel": channel, "auth": SIGN, "channel_data": _frame_text({"user_id": user, "user_info": info})},
            }
        )  # fmt: skip
    return _frame_text({"event": "client-typing", "channel": draw(channel_name), "data": draw(json_value)})


# -- HTTP ---------------------------------------------------------------------------------------------
header_value = st.one_of(
    # HTTP clients refuse control characters and leading or trailing blanks, so none are generated.
    st.text(alphabet=string.printable.translate({ord(c): None for c in "\n\r\x0b\x0c"}), max_size=40).map(
        lambda value: value.strip(" \t")
    ),
    st.sampled_from(
        [b"Bearer \xa0", b"Bearer \t\xa0", b"Bearer", b"bearer  x", b"Basic Zm9vOmJhcg==", b"\xff\xfe"]
    ),
)


@st.composite
def auth_request(draw: Any) -> dict[str, Any]:
    """A request to ``/broadcasting/auth`` or ``/broadcasting/user-auth``: form, JSON or junk body."""
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        fields["socket_id"] = draw(st.one_of(st.sampled_from(["1.2", "1.2\n", "².1", "1.", ".1", "12345.67890"]),
                                             st.text(max_size=12), json_leaf))  # fmt: skip
    if draw(st.booleans()):
        fields["channel_name"] = draw(any_channel)
    if draw(st.integers(0, 3)) == 0:  # a well-formed request, so the signing paths run too
        fields = {"socket_id": f"{draw(st.integers(1, 10**6))}.{draw(st.integers(1, 10**6))}",
                  "channel_name": draw(st.sampled_from(["private-user.7", "presence-chat.7", "private-admin.x",
                                                         "presence-admin.dashboard", "private-notifications"]))}  # fmt: skip
    shape = draw(st.integers(0, 4))
    if shape == 0:
        content_type, body = "application/x-www-form-urlencoded", None
    elif shape == 1:
        content_type, body = "application/json", _frame_text(fields).encode()
    elif shape == 2:
        content_type, body = (
            "application/json",
            draw(st.one_of(deep_json(), json_value.map(_frame_text))).encode(),
        )
    elif shape == 3:
        content_type, body = (
            draw(st.sampled_from(["text/plain", "multipart/form-data", "application/json; x"])),
            draw(st.binary(max_size=80)),
        )
    else:
        content_type, body = "application/x-www-form-urlencoded", draw(st.binary(max_size=80))
    authorization = draw(st.one_of(st.none(), st.just("VALID"), header_value))
    return {"fields": fields, "content_type": content_type, "body": body, "authorization": authorization,
            "csrf": draw(st.one_of(st.none(), st.text(alphabet=string.ascii_letters, max_size=64)))}  # fmt: skip


valid_channel = st.one_of(
    st.text(alphabet=NAME_CHARS, min_size=1, max_size=24),
    st.sampled_from(
        ["general", "user.7", "private-user.7", "presence-chat.7", "admin.dashboard", "notifications"]
    ),
)
valid_event = st.text(alphabet=string.ascii_letters + string.digits + ".-_:", min_size=1, max_size=30)

trigger_body = st.one_of(
    st.builds(
        lambda channels, event, data: _frame_text(
            {"channels": channels, "event": event, "data": data}
        ).encode(),
        st.lists(valid_channel, min_size=1, max_size=3),
        valid_event,
        json_value,
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "channel": any_channel,
            "channels": st.one_of(st.lists(any_channel, max_size=4), json_leaf),
            "event": any_event,
            "data": json_value,
            "socket_id": st.one_of(st.text(max_size=10), json_leaf),
            "messages": st.one_of(
                st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "channel": any_channel,
                            "event": any_event,
                            "data_json": st.one_of(
                                json_value.map(_frame_text), st.text(max_size=20), deep_json()
                            ),
                            "data": json_value,
                            "id": json_leaf,
                            "user_id": json_leaf,
                        },
                    )
                    | json_leaf,
                    max_size=3,
                ),
                json_leaf,
            ),
        },
    ).map(lambda body: _frame_text(body).encode()),
    json_value.map(lambda value: _frame_text(value).encode()),
    deep_json().map(str.encode),
    st.binary(max_size=80),
)

pusher_api_body = st.one_of(
    st.builds(
        lambda channels, name, data, raw: _frame_text(
            {"channels": channels, "name": name, "data": data if raw else _frame_text(data)}
        ).encode(),
        st.lists(valid_channel, min_size=1, max_size=3),
        valid_event,
        json_value,
        st.booleans(),
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "name": any_event,
            "channels": st.one_of(st.lists(any_channel, max_size=4), json_leaf),
            "channel": any_channel,
            "data": st.one_of(json_value.map(_frame_text), json_value, deep_json(), st.text(max_size=40)),
            "socket_id": st.one_of(st.sampled_from(["1.2", "1.2\n", "x"]), json_leaf),
            "info": st.one_of(st.sampled_from(["user_count", "subscription_count", "x,y"]), json_leaf),
        },
    ).map(lambda body: _frame_text(body).encode()),
    json_value.map(lambda value: _frame_text(value).encode()),
    deep_json().map(str.encode),
    st.binary(max_size=80),
)

signing = st.sampled_from(["valid", "valid", "valid", "none", "bad", "stale"])

handshake = st.tuples(
    st.sampled_from(["native-query", "native-path", "pusher"]),
    st.one_of(channel_name, st.text(max_size=30)),
    st.one_of(
        st.none(), st.text(max_size=60), st.sampled_from(["²", "7", "8", "-1", "99999999999999999999"])
    ),
)
