"""``broadcast websocket`` names a non-loopback bind, which needs a reverse proxy in front."""

from __future__ import annotations

import pytest

from django_broadcasting.cli.serve import _loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("broadcast.example.com", False),  # a name may resolve to anything: the notice is shown
    ],
)
def test_loopback(host, loopback):
    assert _loopback(host) is loopback
