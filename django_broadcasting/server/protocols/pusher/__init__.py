"""The Pusher protocol 7 server side: ``codec`` (frames), ``connection`` (close codes, keepalive),
``consumer`` (``/app/{key}``: subscribe, signin, client events) and ``routing`` (the URL).

``django_broadcasting.server.protocols.pusher`` keeps the codec's names (``PUSHER``,
``event_frame``, ``error_frame``, ``parse``, ``client_name``, ...), as before it became a package.
"""

from __future__ import annotations

from .codec import *  # noqa: F403
from .codec import PUSHER, PusherFrameError, PusherProtocol, client_name, error_frame, event_frame, parse  # noqa: F401
