"""Older import path of ``cluster_stats`` / ``acluster_stats``; they live in ``django_broadcasting.backends``."""

from __future__ import annotations

from ..backends import acluster_stats, cluster_stats
from ..backends.base import stats_totals as totals

__all__ = ["acluster_stats", "cluster_stats", "totals"]
