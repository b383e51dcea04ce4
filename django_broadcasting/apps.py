"""App configuration: system checks, autodiscovery of each app's ``broadcast_channels``, runserver's address."""

from __future__ import annotations

from django.apps import AppConfig


class BroadcastingConfig(AppConfig):
    name = "django_broadcasting"
    verbose_name = "Broadcasting"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing these registers system checks and signal receivers.
        from . import checks  # noqa: F401
        from .authorization import autodiscover
        from .conf import broadcasting_settings

        if broadcasting_settings.AUTODISCOVER:
            autodiscover()
