"""``ReplayBuffer``: live messages held during a history read go out after the replay, never twice."""

from __future__ import annotations

from django_broadcasting.backends.history import ReplayBuffer, is_newer


def ident(item):
    return item


def test_held_messages_the_replay_covered_are_dropped():
    buffer = ReplayBuffer(["e:3", "e:4", "e:5"])
    assert buffer.merge(["e:2", "e:3", "e:4"], ("e", 1), ident) == ["e:2", "e:3", "e:4", "e:5"]


def test_without_a_replay_the_position_asked_for_decides():
    buffer = ReplayBuffer(["e:1", "e:2", "e:3"])
    assert buffer.merge([], ("e", 2), ident) == ["e:3"]


def test_another_epoch_or_no_id_is_newer_a_duplicate_beats_a_gap():
    buffer = ReplayBuffer(["f:1", None, "e:1"])
    assert buffer.merge(["e:2"], ("e", 0), ident) == ["e:2", "f:1", None]
    assert is_newer("e:9", None)
    assert not is_newer("e:2", ("e", 2))


def test_dicts_by_their_id_as_the_transport_holds_them():
    buffer = ReplayBuffer([{"id": "e:1"}, {"id": "e:2"}])
    assert buffer.merge([{"id": "e:1"}], None, lambda p: p.get("id"))[1:] == [{"id": "e:2"}]
    assert buffer.merge([{"id": "e:1"}], ("e", 0), lambda p: p.get("id")) == [{"id": "e:1"}, {"id": "e:2"}]
    assert isinstance(buffer, list)  # holding a message is one list.append on the reader's path
