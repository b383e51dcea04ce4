"""Management commands of django-broadcasting (``manage.py broadcast ...``)."""
