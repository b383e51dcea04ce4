"""Compatibility path: the stats series live in ``django_broadcasting.stats.series``."""

from __future__ import annotations

from ..stats.series import *  # noqa: F403
from ..stats.series import CHARTS, SERIES_STEP, SeriesRing, charts, sample_of  # noqa: F401
