"""Compatibility path: reading a running server's stats lives in ``django_broadcasting.stats.remote``."""

from __future__ import annotations

from ..stats.remote import STATS_PATH, client_headers, fetch_remote, fetch_remote_stats, stats_url

__all__ = ["STATS_PATH", "client_headers", "fetch_remote", "fetch_remote_stats", "stats_url"]
