"""docs/troubleshooting.md quotes messages users see: each quote must still be what the code says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "troubleshooting.md").read_text()
SOURCES = "\n".join(
    path.read_text() for path in (ROOT / "django_broadcasting").rglob("*") if path.suffix in (".py", ".js")
)


def code_fragments(message: str) -> list[str]:
    """The literal parts of a message as the code writes it (values such as 'user.5' left out)."""
    parts = re.split(
        r": |'[^']*'|\d+\.\d+\.\d+\.\d+:\d+|http://\S+|\[Errno \d+\][^\n]*|\(\d{4}\)|\"[^\"]*\"", message
    )
    return [p.strip(" :") for p in parts if len(p.strip(" :")) >= 12]


def test_quoted_server_and_client_messages_are_in_the_code():
    quoted = re.findall(r"`(WebSocket refused: [^`]+)`", DOC)
    quoted += ["No JWT_SECRET is set: WebSocket tokens are signed with SECRET_KEY.",
               "Cannot reach", "Queued broadcast of", "DJANGO_SETTINGS_MODULE is not set: export it",
               "Not authorized for this channel.", "requires authentication."]  # fmt: skip
    assert len(quoted) >= 4
    for message in quoted:
        for fragment in code_fragments(message):
            assert fragment in SOURCES or fragment.replace("%s", "") in SOURCES, (message, fragment)
    for message in quoted[-6:]:
        assert message in DOC, message
