"""Compatibility path: daphne's ``serverClose`` patch lives in ``server/fastpath/daphne.py``
and the WebSocket scheme fix in ``auth/daphne_scope.py``."""

from __future__ import annotations

from ..auth.daphne_scope import report_websocket_scheme  # noqa: F401
from .fastpath.daphne import allow_standard_close_codes  # noqa: F401

__all__ = ["allow_standard_close_codes", "report_websocket_scheme"]
