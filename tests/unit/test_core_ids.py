"""The neutral core's socket ids and Channels-layer group names (``core/ids.py``, ``core/groups.py``)."""

from __future__ import annotations

import os

from django_broadcasting.core import groups, ids


def test_socket_ids_have_the_pusher_form_and_carry_the_app_position():
    plain = ids.new_socket_id(7)
    assert ids.SOCKET_ID_RE.fullmatch(plain)
    assert plain.endswith(".7")
    assert plain.startswith(str(os.getpid() % 1_000_000))
    with_app = ids.new_socket_id(8, 3)
    assert ids.SOCKET_ID_RE.fullmatch(with_app)
    assert ids.app_position(with_app) == 3
    assert ids.app_position("1.2") is None


def test_group_names_are_literal_when_safe_and_hashed_otherwise():
    assert groups.group_name("orders.1", "pre.") == "pre.bc.orders.1"
    hashed = groups.group_name("private-user=1", "pre.")
    assert hashed.startswith("pre.bc.h.") and len(hashed) < 100
    # A literal name in the hashed namespace is hashed too: it cannot take another channel's group.
    assert groups.group_name("h.abc") != "bc.h.abc"
    assert groups.group_name("h.abc").startswith("bc.h.")
    assert groups.group_name("x" * 200) == groups.group_name("x" * 200)
    assert groups.group_name("a", "bad prefix:").startswith("bad_prefix_bc.")


def test_the_old_paths_give_the_same_answers():
    from django_broadcasting.backends.local.layer import group_name
    from django_broadcasting.conf import broadcasting_settings
    from django_broadcasting.pusher_signing import SOCKET_ID_RE

    assert SOCKET_ID_RE is ids.SOCKET_ID_RE
    prefix = broadcasting_settings.CHANNELS_PREFIX
    assert group_name("a:b") == groups.group_name("a:b", prefix)
