"""What Django needs of this app's models: ``BroadcastingAdmin``, the carrier of two admin permissions.

``BroadcastingAdmin`` is an unmanaged model without a table: it exists only to carry the two
permissions of the admin pages (``django_broadcasting.view_console``: the debug console;
``django_broadcasting.disconnect_users``: closing a user's sockets from the channel browser).
Django creates them with the other permissions after ``migrate``; grant them to a staff user or
group in the admin's user pages. Superusers have both. This app defines no database tables.

Model broadcasting (``BroadcastsModelEvents``, ``without_model_broadcasts``) lives in
``model_events.py``; its names are re-exported here, where they used to be.
"""

from __future__ import annotations

from django.db import models

from .model_events import (  # noqa: F401  (compatibility path)
    CREATED,
    DELETED,
    UPDATED,
    BroadcastsModelEvents,
    ModelEvent,
    without_model_broadcasts,
)

__all__ = [
    "BroadcastingAdmin",
    "BroadcastsModelEvents",
    "ModelEvent",
    "without_model_broadcasts",
    "CREATED",
    "UPDATED",
    "DELETED",
]


class BroadcastingAdmin(models.Model):
    """Permissions of the admin pages (no table: ``managed = False``, never queried)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_console", "Can view the broadcasting debug console"),
            ("disconnect_users", "Can close a user's broadcasting connections"),
        ]
        verbose_name = "broadcasting admin"
