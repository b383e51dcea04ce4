"""Figures per Pusher app (``PUSHER_APPS``), for the stats API, ``/metrics`` and the admin.

The hub counts open connections per app as sockets come and go, and the broadcasts of apps other
than the default one as it delivers them (a prefix test per broadcast, see ``Hub.deliver``); the
rest is derived here when stats are read: channels and subscriptions from the hub's subscriber
sets, and the default app's messages as the totals minus the other apps'.
"""

from __future__ import annotations

from typing import Any

from ..messages import APP_NAMESPACE
from ..pusher_apps import app_by_id, get_apps, split_channel
from ..stats.apps import merge_app_stats  # noqa: F401  (compatibility path)

__all__ = ["app_stats", "count_app_message", "merge_app_stats"]


def count_app_message(hub: Any, channel: str) -> list[int] | None:
    """Count a broadcast on another app's ``channel``; return that app's ``[messages_in, deliveries]``."""
    app_id = channel[len(APP_NAMESPACE) :].partition(":")[0]
    figures = hub.app_messages.get(app_id)
    if figures is None:
        if app_by_id(app_id) is None:
            return None  # an app no longer configured: nothing to report it under
        figures = hub.app_messages[app_id] = [0, 0]
    figures[0] += 1
    return figures


def app_stats(hub: Any) -> dict[str, dict[str, int]]:
    """``{app id: {"connections", "channels", "subscriptions", "messages_in", "deliveries"}}``."""
    apps = get_apps()
    if not apps.several:  # one app: every figure is the hub's
        subscribers = hub.subscribers
        return {
            apps.default.id: {
                "connections": len(hub.connections),
                "channels": len(subscribers),
                "subscriptions": sum(map(len, subscribers.values())),
                "messages_in": hub.messages_in,
                "deliveries": hub.deliveries,
            }
        }
    out = {
        app.id: {"connections": hub.app_connections.get(app.id, 0), "channels": 0, "subscriptions": 0}
        for app in apps
    }
    default = out[apps.default.id]
    default["connections"] += hub.app_connections.get("", 0)  # sockets made without an app
    for name, subs in hub.subscribers.items():
        figures = out.get(split_channel(name)[0].id, default)
        figures["channels"] += 1
        figures["subscriptions"] += len(subs)
    others_in = others_out = 0
    for app in apps:
        if app is apps.default:
            continue
        messages_in, deliveries = hub.app_messages.get(app.id, (0, 0))
        out[app.id].update(messages_in=messages_in, deliveries=deliveries)
        others_in, others_out = others_in + messages_in, others_out + deliveries
    default.update(messages_in=hub.messages_in - others_in, deliveries=hub.deliveries - others_out)
    return out
