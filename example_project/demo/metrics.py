"""The live dashboard's feed: ``metrics_update`` on ``admin.dashboard`` every few seconds.

The "Dashboard Updates" example, run as an asyncio task inside the server process: the
first subscription to ``admin.dashboard`` starts it (the ``subscribed`` signal), and it stops
by itself once nobody watches. Being in the server process, it publishes straight to the hub
and reads the hub's own figures (connections, users online).

``DEMO_METRICS_INTERVAL`` (seconds, default 2) sets the period. ``python manage.py
dashboard_metrics`` publishes the same figures from outside the server.

With several server processes each one feeds its own viewers: fine for a demo; a real site
would run one publisher (a task or cron job calling ``publish_metrics``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import shutil
import time
from typing import Any

from django.core.signals import request_finished

from django_broadcasting import broadcast
from django_broadcasting.messages import utc_now_iso
from django_broadcasting.signals import subscribed

logger = logging.getLogger("example_project.demo")

DASHBOARD_CHANNEL = "admin.dashboard"
METRICS_EVENT = "metrics_update"

# Finish times of recent HTTP requests in this process (one minute's worth is kept).
_requests: collections.deque[float] = collections.deque(maxlen=100_000)
_task: asyncio.Task | None = None


def interval() -> float:
    """Return the publishing period in seconds (``DEMO_METRICS_INTERVAL``, default 2)."""
    try:
        return max(0.1, float(os.environ.get("DEMO_METRICS_INTERVAL", "2")))
    except ValueError:
        return 2.0


def _count_request(sender: Any, **kwargs: Any) -> None:
    _requests.append(time.monotonic())


def requests_per_minute() -> int:
    """Return how many HTTP requests this process finished in the last 60 seconds."""
    horizon = time.monotonic() - 60
    while _requests and _requests[0] < horizon:
        _requests.popleft()
    return len(_requests)


def collect_metrics() -> dict[str, Any]:
    """Return the figures: cpu, memory, disk (percent), active_users, requests_per_minute."""
    try:
        import psutil

        cpu = psutil.cpu_percent(interval=None)
        memory = psutil.virtual_memory().percent
    except ImportError:  # psutil is optional: fall back to the load average and /proc
        cpu = min(100.0, os.getloadavg()[0] / (os.cpu_count() or 1) * 100)
        memory = _proc_memory_percent()
    disk = shutil.disk_usage("/")
    return {
        "cpu": round(cpu, 1),
        "memory": round(memory, 1),
        "disk": round(disk.used / disk.total * 100, 1),
        "active_users": _active_users(),
        "requests_per_minute": requests_per_minute(),
        "timestamp": utc_now_iso(),
    }


def _proc_memory_percent() -> float:
    try:
        fields = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines() if ":" in line)
        total = int(fields["MemTotal"].split()[0])
        available = int(fields["MemAvailable"].split()[0])
        return (total - available) / total * 100
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        return 0.0


def _active_users() -> int:
    """Return the number of distinct logged-in users connected to this server process."""
    from django_broadcasting.server.hub import get_hub

    users = set()
    for conn in list(get_hub().connections.values()):
        identity = getattr(conn, "identity", None)
        if identity is not None and identity.user_id is not None:
            users.add(identity.user_id)
    return len(users)


async def apublish_metrics() -> None:
    """Broadcast one ``metrics_update`` on ``admin.dashboard`` (the example)."""
    await broadcast().channel(DASHBOARD_CHANNEL).event(METRICS_EVENT).with_data(collect_metrics()).asend()


def _watched() -> bool:
    from django_broadcasting.server.hub import get_hub

    return bool(get_hub().subscribers.get(DASHBOARD_CHANNEL))


async def run() -> None:
    """Publish every ``interval()`` seconds while someone in this process watches the dashboard."""
    while _watched():
        try:
            await apublish_metrics()
        except Exception:  # a failed tick must not end the feed
            logger.exception("dashboard metrics: publishing failed")
        await asyncio.sleep(interval())


async def _on_subscribed(sender: Any, channel: str = "", **kwargs: Any) -> None:
    global _task
    if channel != DASHBOARD_CHANNEL:
        return
    if _task is None or _task.done():
        # The signal is sent from the server's event loop, so the task lives as long as the server.
        _task = asyncio.get_running_loop().create_task(run(), name="demo-dashboard-metrics")


def connect() -> None:
    """Hook the feed to the server's ``subscribed`` signal and count finished requests."""
    subscribed.connect(_on_subscribed, dispatch_uid="example_project.demo.metrics")
    request_finished.connect(_count_request, dispatch_uid="example_project.demo.requests")
