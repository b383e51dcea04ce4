"""``manage.py broadcast``: Laravel-style ``broadcast`` commands (see ``django_broadcasting.cli``)."""
