"""MemoryHistory: ids with an epoch, bounded size, TTL, and recovery that never leaves a silent gap."""

from __future__ import annotations

import time

import pytest

from django_broadcasting.backends.history import MemoryHistory, format_id, parse_id
from django_broadcasting.messages import Message


def msg(n: int, channel: str = "general") -> Message:
    return Message(channel, "tick", {"n": n})


def test_ids_count_per_channel_within_one_epoch():
    history = MemoryHistory(size=10, ttl=0)
    a1, a2, b1 = history.append(msg(1)), history.append(msg(2)), history.append(msg(1, "other"))
    assert parse_id(a1.id)[1] == 1 and parse_id(a2.id)[1] == 2 and parse_id(b1.id)[1] == 1
    assert parse_id(a1.id)[0] == parse_id(a2.id)[0] != parse_id(b1.id)[0]
    assert a1.native_frame.endswith(f',"id":"{a1.id}"}}')


@pytest.mark.parametrize("value", [None, 5, "", "abc", "abc:", ":1", "abc:-1", "abc:1x", "a" * 70 + ":1"])
def test_parse_id_rejects_what_is_not_an_id(value):
    assert parse_id(value) is None


def test_parse_id_round_trips():
    assert parse_id(format_id("ab12", 7)) == ("ab12", 7)


def test_recovers_the_missed_messages_in_order():
    history = MemoryHistory(size=10, ttl=0)
    first = history.append(msg(0))
    later = [history.append(msg(n)) for n in range(1, 4)]
    result = history.recover_now("general", first.id)
    assert result.ok and [m.data["n"] for m in result.messages] == [1, 2, 3]
    assert result.current_id == later[-1].id
    assert history.recover_now("general", later[-1].id).messages == []


def test_fails_when_trimmed_or_from_another_epoch_or_ahead():
    history = MemoryHistory(size=2, ttl=0)
    first = history.append(msg(0))
    for n in range(1, 4):
        history.append(msg(n))
    assert not history.recover_now("general", first.id).ok  # 3 missed, 2 kept
    epoch = parse_id(first.id)[0]
    assert history.recover_now("general", format_id(epoch, 2)).ok  # 2 missed, 2 kept
    assert "epoch" in history.recover_now("general", "other:1").reason
    assert "ahead" in history.recover_now("general", format_id(epoch, 9)).reason
    assert "no history" in history.recover_now("nowhere", format_id(epoch, 1)).reason


def test_ttl_starts_a_new_epoch(monkeypatch):
    history = MemoryHistory(size=10, ttl=5)
    first = history.append(msg(0))
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 6)
    assert not history.recover_now("general", first.id).ok
    again = history.append(msg(1))
    assert parse_id(again.id)[0] != parse_id(first.id)[0] and parse_id(again.id)[1] == 1
    history.prune()
    assert history.current_id("general") == again.id


def test_prune_forgets_idle_channels(monkeypatch):
    history = MemoryHistory(size=10, ttl=5)
    history.append(msg(0))
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 6)
    history.prune()
    assert history.current_id("general") is None


# -- memory bounded by configuration ------------------------------------------------------------------
def big(n: int, channel: str = "general", size: int = 16_000, history: bool = True) -> Message:
    return Message(channel, "tick", {"n": n, "pad": "x" * size}, history=history)


def test_client_events_are_delivered_without_an_id_and_never_kept():
    history = MemoryHistory(size=10, ttl=0)
    whisper = Message("presence.chat.1", "client-typing", {"x": 1}, history=False)
    assert history.append(whisper) is whisper and whisper.id is None
    assert history.stats() == {"channels": 0, "entries": 0, "bytes": 0}


def test_kept_entries_hold_the_json_only_never_the_decoded_payload():
    from django_broadcasting.messages import _UNDECODED

    history = MemoryHistory(size=10, ttl=0)
    first = history.append(msg(0))
    history.append(big(1))
    [(kept, _)] = list(history._channels["general"].entries)[1:]
    assert kept._data is _UNDECODED  # a dict 25x its wire size is never kept
    recovered = history.recover_now("general", first.id).messages
    assert recovered[0].data["n"] == 1  # decoded when someone reads it


def test_a_channel_keeps_at_most_its_byte_budget_and_recovery_past_it_fails():
    history = MemoryHistory(size=100, ttl=0, channel_bytes=100_000)
    first = history.append(big(0))
    for n in range(1, 10):
        history.append(big(n))
    assert history._channels["general"].bytes <= 100_000
    assert len(history._channels["general"].entries) == 3
    result = history.recover_now("general", first.id)
    assert not result.ok and result.reason == "messages were trimmed from the history"


def test_the_process_budget_takes_from_the_biggest_channel_first():
    history = MemoryHistory(size=1000, ttl=0, total_bytes=200_000)
    quiet = history.append(msg(0, "quiet"))
    history.append(msg(1, "quiet"))
    for n in range(40):  # a noisy channel: 40 x 16 KB
        history.append(big(n, "noisy"))
    assert history.bytes <= 200_000
    assert len(history._channels["quiet"].entries) == 2  # untouched
    assert history.recover_now("quiet", quiet.id).ok
    assert history.stats()["bytes"] == history.bytes == sum(c.bytes for c in history._channels.values())


def test_expiry_and_prune_give_the_bytes_back():
    history = MemoryHistory(size=10, ttl=0.05)
    history.append(big(0))
    assert history.bytes > 16_000
    time.sleep(0.06)
    history.prune()
    assert history.bytes == 0 and history.stats()["channels"] == 0
