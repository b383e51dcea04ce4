"""The example site for django-broadcasting: chat with presence, notifications, live dashboard."""
