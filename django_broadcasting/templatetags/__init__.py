"""Template tags of django-broadcasting: ``{% load broadcasting %}``."""
