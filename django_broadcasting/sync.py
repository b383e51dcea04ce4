"""``sync_shim``: the one way a sync twin is made from an async function.

Django names async twins with an ``a`` prefix (``dispatch`` / ``adispatch``); the sync one is
never a second implementation, only ``async_to_sync`` over the first, with its signature and
types kept (``inspect.signature`` and type checkers both see the async function's).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import async_to_sync

P = ParamSpec("P")
R = TypeVar("R")


def sync_shim(afunc: Callable[P, Awaitable[R]]) -> Callable[P, R]:
    """Return the sync twin of ``afunc`` (``abroadcast_to_user`` -> ``broadcast_to_user``)."""

    @functools.wraps(afunc)
    def shim(*args: P.args, **kwargs: P.kwargs) -> R:
        return async_to_sync(afunc)(*args, **kwargs)

    name = afunc.__name__[1:] if afunc.__name__.startswith("a") else afunc.__name__
    shim.__name__ = name
    shim.__qualname__ = (
        afunc.__qualname__.rsplit(".", 1)[0] + "." + name if "." in afunc.__qualname__ else name
    )
    shim.__doc__ = f"Sync shim over ``{afunc.__name__}``: {(afunc.__doc__ or '').strip()}"
    return shim
