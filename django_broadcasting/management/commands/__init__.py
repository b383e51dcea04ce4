"""``manage.py broadcast``: the seed's artisan ``broadcast`` commands (see ``django_broadcasting.cli``)."""
