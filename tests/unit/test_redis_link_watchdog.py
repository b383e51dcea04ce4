"""The pub/sub link's watchdog: PING after a quiet spell, dead only when a PING goes unanswered."""

from __future__ import annotations

import asyncio
import time

import pytest

from django_broadcasting.backends.redis.transport import _PubSubLink, hiredis

pytestmark = pytest.mark.skipif(hiredis is None, reason="the link reads with hiredis")


class FakeConn:
    def __init__(self):
        self.sent = []

    async def send_command(self, *args, check_health=True):
        self.sent.append(args)


class FakeTransport:
    def get_protocol(self):
        return None


def new_link():
    return _PubSubLink(FakeTransport(), None, lambda reply: None)


async def test_a_late_check_on_an_idle_link_pings_before_it_gives_up():
    link = new_link()
    conn = FakeConn()
    link.last_rx = time.monotonic() - 60  # idle for long, and the check wakes late
    watch = asyncio.ensure_future(link.watch(conn, 0.05))
    try:
        await asyncio.sleep(0.08)
        assert conn.sent == [("PING",)]
        assert not link.closed.done(), "declared dead before it was asked"
        link.last_rx = time.monotonic()  # the PONG
        await asyncio.sleep(0.1)
        assert not link.closed.done()
    finally:
        watch.cancel()


async def test_an_unanswered_ping_ends_the_link():
    link = new_link()
    conn = FakeConn()
    link.last_rx = time.monotonic() - 60
    watch = asyncio.ensure_future(link.watch(conn, 0.05))
    await asyncio.wait([link.closed], timeout=1)
    with pytest.raises(ConnectionError, match="went silent"):
        link.closed.result()
    assert conn.sent == [("PING",)]
    await watch
