"""Compatibility path: ``django_broadcasting.http.metrics`` is ``django_broadcasting.http.metrics_view`` (the same module object)."""

from __future__ import annotations

import sys

from . import metrics_view

sys.modules[__name__] = metrics_view
