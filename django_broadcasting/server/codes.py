"""Compatibility path: the close and error codes live in ``django_broadcasting.core.codes``."""

from __future__ import annotations

from ..core.codes import *  # noqa: F403
from ..core.codes import __all__  # noqa: F401
