"""Compatibility path: ``django_broadcasting.broadcasting`` is ``django_broadcasting.publishing``.

Importing this module gives the very same module object, so attribute reads and writes (tests'
``monkeypatch.setattr``) act on ``publishing`` itself. See ``compat.py``.
"""

from __future__ import annotations

import sys

from . import publishing

sys.modules[__name__] = publishing
