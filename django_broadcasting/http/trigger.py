"""The signed HTTP trigger's server side: what it verifies (signing lives with the publisher).

The signing scheme and the publisher's client are ``backends/local/trigger.py``; this module
re-exports what the server's view needs, so both sides use one implementation.
"""

from __future__ import annotations

from ..backends.local.trigger import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    apost,
    encode_body,
    sign,
    trigger_secret,
    trigger_url,
    verify,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "apost",
    "encode_body",
    "sign",
    "trigger_secret",
    "trigger_url",
    "verify",
]
