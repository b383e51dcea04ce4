"""The native protocol: its codec (``codec``) and its consumer (``consumer``).

``django_broadcasting.server.protocols.native`` keeps the codec's names (``NATIVE``, ``frame``,
``error_frame``, ``parse``, ``ProtocolError``, ...), as before the protocol became a package.
"""

from __future__ import annotations

from .codec import *  # noqa: F403
from .codec import NATIVE, NativeProtocol, ProtocolError, error_frame, frame, parse, require_str  # noqa: F401
