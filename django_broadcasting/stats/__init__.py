"""Stats: one document, read the same way by the stats API, the admin page, the CLI and tools.

- ``collect()`` (async): this process's hub when it serves, plus every node's report with the
  ``redis`` backend;
- ``read()``: the same from any thread, or ``fetch_remote()`` of the running server when this
  process serves nothing and has no cluster to read;
- ``fetch_remote(url)``: ``GET /api/broadcast/stats`` (``STATS_PATH``) of a running server;
- ``summarize(nodes)``: per-node reports added up into the document's shape.

``/metrics`` reads the same hub counters (``metrics.hub_counts``) but numbers only, so a scrape
never copies channel names or presence members.
"""

from __future__ import annotations

from .document import (
    RATE_FIELDS,
    SUM_FIELDS,
    RateWindow,
    collect,
    has_cluster,
    local_node_stats,
    read,
    summarize,
)
from .remote import STATS_PATH, client_headers, fetch_remote, stats_url

__all__ = [
    "RATE_FIELDS",
    "STATS_PATH",
    "SUM_FIELDS",
    "RateWindow",
    "client_headers",
    "collect",
    "fetch_remote",
    "has_cluster",
    "local_node_stats",
    "read",
    "stats_url",
    "summarize",
]
