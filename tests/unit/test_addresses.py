"""The client address limits count against: the peer, or X-Forwarded-For from a trusted proxy only."""

from __future__ import annotations

import pytest

from django_broadcasting.server.addresses import client_address, limited


def scope(peer: str, forwarded: str | None = None) -> dict:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 5000), "headers": headers}


def test_without_trusted_proxies_the_peer_counts_and_headers_are_ignored(settings):
    settings.BROADCASTING = {}
    assert client_address(scope("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),  # one trusted hop
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # a client-supplied hop is skipped
        ("127.0.0.1", "198.51.100.7, 10.0.0.5", "198.51.100.7"),  # two trusted proxies
        ("203.0.113.9", "198.51.100.7", "203.0.113.9"),  # an untrusted peer cannot pick its address
        ("127.0.0.1", None, "127.0.0.1"),
    ],
)
def test_a_trusted_proxy_passes_the_client_on(settings, peer, forwarded, expected):
    settings.BROADCASTING = {"TRUSTED_PROXIES": ["127.0.0.1", "10.0.0.0/8"]}
    assert client_address(scope(peer, forwarded)) == expected


def test_no_client_in_the_scope(settings):
    settings.BROADCASTING = {}
    assert client_address({"headers": []}) == "unknown"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("198.51.100.7", True),
        ("10.0.0.5", True),
        ("::ffff:198.51.100.7", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("unknown", False),
    ],
)
def test_loopback_and_unknown_clients_are_not_limited(address, expected):
    assert limited(address) is expected
