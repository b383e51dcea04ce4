"""``BaseDriver``: the older name of ``django_broadcasting.backends.base.Backend``.

A custom driver subclasses it and implements ``apublish`` (or, as before, ``abroadcast``).
"""

from __future__ import annotations

from ..backends.base import Backend, PublishReceipt

#: Every driver is a backend; this name is kept for code written against it.
BaseDriver = Backend

__all__ = ["BaseDriver", "PublishReceipt"]
