"""Compatibility path: ``django_broadcasting.http.views`` is ``django_broadcasting.http.trigger_endpoint`` (the same module object)."""

from __future__ import annotations

import sys

from . import trigger_endpoint

sys.modules[__name__] = trigger_endpoint
