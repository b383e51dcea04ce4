"""Compatibility path: ``django_broadcasting.broadcast_channels`` is ``django_broadcasting.builtin_channels`` (the same module object)."""

from __future__ import annotations

import sys

from . import builtin_channels

sys.modules[__name__] = builtin_channels
