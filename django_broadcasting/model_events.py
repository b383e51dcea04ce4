"""Model broadcasting: ``BroadcastsModelEvents`` publishes ``<Model>Created/Updated/Deleted``.

Mix it into a model::

    class Article(BroadcastsModelEvents, models.Model):
        title = models.CharField(max_length=200)

Saving a new ``blog.Article`` with pk 7 publishes, after the transaction commits, event
``ArticleCreated`` on the channels ``blog.article.7`` (this instance) and ``blog.article``
(every article), with the model serialized the way ``django.core.serializers`` "python" does:
``{"model": "blog.article", "pk": 7, "fields": {...}}``. Updates publish ``ArticleUpdated``,
deletes ``ArticleDeleted`` (with the data as it was before the delete).

Override ``broadcast_channels_for(action)``, ``broadcast_event_name_for(action)``,
``broadcast_data_for(action)`` or ``broadcast_when_for(action)``; narrow ``broadcast_actions``;
pick a driver with ``broadcast_driver``. ``without_model_broadcasts()`` silences a block.

The events are ordinary dispatched events (listeners and ``EventFake`` see them). This app
defines no database tables.

(``django_broadcasting.models`` re-exports these names: the path the docs used before.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core import serializers
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .events import Event, ShouldBroadcast

__all__ = ["BroadcastsModelEvents", "ModelEvent", "without_model_broadcasts", "CREATED", "UPDATED", "DELETED"]

CREATED, UPDATED, DELETED = "created", "updated", "deleted"

_disabled: ContextVar[bool] = ContextVar("django_broadcasting_model_broadcasts_disabled", default=False)


@contextmanager
def without_model_broadcasts() -> Iterator[None]:
    """Inside the block, saving or deleting a ``BroadcastsModelEvents`` model broadcasts nothing."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


class BroadcastsModelEvents:
    """Model mixin: broadcast created/updated/deleted events for each instance, after commit."""

    #: Which actions broadcast.
    broadcast_actions: tuple[str, ...] = (CREATED, UPDATED, DELETED)
    #: Driver alias; None means ``DEFAULT_DRIVER``.
    broadcast_driver: str | None = None

    def broadcast_channels_for(self, action: str) -> list[str]:
        """Return the channels for ``action``: ``<app_label>.<model_name>.<pk>`` and ``<app_label>.<model_name>``."""
        label = self._meta.label_lower  # type: ignore[attr-defined]
        return [f"{label}.{self.pk}", label]  # type: ignore[attr-defined]

    def broadcast_event_name_for(self, action: str) -> str:
        """Return the event name for ``action``: ``<ModelName>Created`` / ``Updated`` / ``Deleted``."""
        return f"{type(self).__name__}{action.capitalize()}"

    def broadcast_data_for(self, action: str) -> Any:
        """Return the payload: the instance serialized like ``serializers.serialize("python", ...)``."""
        return serializers.serialize("python", [self])[0]

    def broadcast_when_for(self, action: str) -> bool:
        """Return False to skip broadcasting ``action`` for this instance."""
        return True


class ModelEvent(Event, ShouldBroadcast):
    """The event dispatched for a model action; its name, channels and data are fixed when built."""

    after_commit = True

    def __init__(self, instance: BroadcastsModelEvents, action: str) -> None:
        # Captured now: after a delete the instance's pk is None, and later edits must not leak in.
        self.instance = instance
        self.action = action
        self._name = instance.broadcast_event_name_for(action)
        self._channels = instance.broadcast_channels_for(action)
        self._data = instance.broadcast_data_for(action)
        self.broadcast_driver = instance.broadcast_driver

    def event_name(self) -> str:
        return self._name

    def to_json(self) -> Any:
        return self._data

    def broadcast_on(self) -> list[str]:
        return self._channels

    def broadcast_when(self) -> bool:
        return self.instance.broadcast_when_for(self.action)


def _dispatch(instance: Any, action: str) -> None:
    if _disabled.get() or action not in instance.broadcast_actions:
        return
    ModelEvent(instance, action).dispatch()


@receiver(post_save, dispatch_uid="django_broadcasting.model_saved")
def _model_saved(sender: Any, instance: Any, created: bool = False, raw: bool = False, **kwargs: Any) -> None:
    # raw: loaddata is restoring fixtures, not the application changing data.
    if raw or not isinstance(instance, BroadcastsModelEvents):
        return
    _dispatch(instance, CREATED if created else UPDATED)


@receiver(post_delete, dispatch_uid="django_broadcasting.model_deleted")
def _model_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if isinstance(instance, BroadcastsModelEvents):
        _dispatch(instance, DELETED)
