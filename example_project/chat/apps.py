"""App configuration of the example chat."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "example_project.chat"
    label = "chat"
    verbose_name = "Chat (example)"
    default_auto_field = "django.db.models.BigAutoField"
