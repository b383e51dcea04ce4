"""A refused handshake tells the client only ``HTTP 403``: the server logs why, at WARNING.

WARNING is the level Python's default logging shows (a project without ``LOGGING`` sees it on
stderr), and the level these tests set the example project's broadcasting logger to.
"""

from __future__ import annotations

import pytest
import websockets

from tests.integration.wsclient import connect, make_token
from tests.servers import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
async def test_refused_handshakes_log_their_reason_at_warning(server_factory, kind):
    server = server_factory(
        kind, env={"BROADCAST_LOG_LEVEL": "WARNING", "CORS_ALLOWED_ORIGINS": "https://app.example"}
    )
    cases = [
        ("/ws?channel=user.5", {}, "WebSocket refused: channel 'user.5'"),
        (
            f"/ws?auth_token={make_token(5, secret='wrong-secret-wrong-secret-wrong')}",
            {},
            "WebSocket refused:",
        ),
        (
            "/ws",
            {"origin": "https://evil.example"},
            "WebSocket refused (HTTP 403): Origin 'https://evil.example'",
        ),
    ]
    for path, headers, logged in cases:
        with pytest.raises(websockets.InvalidStatus) as info:
            await connect(server.ws_url(path), additional_headers=headers)
        assert info.value.response.status_code == 403
        wait_for(lambda logged=logged: logged in server.log_text(), 10, message=f"{logged!r} in the log")
    assert "WARNING" in server.log_text()
