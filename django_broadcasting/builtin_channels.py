"""The built-in channel rules, tried after every rule of the project's apps.

==========================  ===========  =====================================================
pattern                     kind         who may join
==========================  ===========  =====================================================
``general``, ``public``,    public       anyone
``announcements``
``notifications``           private      any authenticated user
``admin``, ``admin.*``      private      identities with the ``admin`` role
``user.{user_id}``          private      that user only
``team.{team_id}``          private      ``BROADCASTING["TEAM_ACCESS"]`` (default: ``teams`` claim)
``org.{org_id}``            private      ``BROADCASTING["ORG_ACCESS"]`` (default: ``orgs`` claim)
``presence.chat.{room_id}`` presence     any authenticated user; member info ``{"id", "name"}``
``presence.game.{game_id}`` presence     any authenticated user; member info ``{"id", "name"}``
==========================  ===========  =====================================================

``#server-to-user-{user_id}`` (Pusher's per-user channel, see docs/laravel-echo.md) is private
to that user as well.

A project overrides any of them with its own ``@channel`` rule (user rules are tried first)
or switches them all off with ``BROADCASTING["BUILTIN_CHANNELS"] = False``. This module only
defines functions: it registers nothing when autodiscovery imports it. The rules are async
so that the common checks cost no trip to the database thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from channels.db import database_sync_to_async

from .auth.identity import Identity
from .conf import broadcasting_settings


def _claim_contains(identity: Identity, claim: str, value: str) -> bool:
    members = identity.claims.get(claim)
    if isinstance(members, (str, int)):
        members = [members]
    if not isinstance(members, (list, tuple)):
        return False
    return any(str(member) == value for member in members if not isinstance(member, bool))


async def default_team_access(identity: Identity, team_id: str) -> bool:
    """Default ``TEAM_ACCESS`` hook: the token's ``teams`` claim lists ``team_id``."""
    return _claim_contains(identity, "teams", team_id)


async def default_org_access(identity: Identity, org_id: str) -> bool:
    """Default ``ORG_ACCESS`` hook: the token's ``orgs`` claim lists ``org_id``."""
    return _claim_contains(identity, "orgs", org_id)


async def _call_hook(hook: Callable[..., Any], identity: Identity, value: str) -> bool:
    if iscoroutinefunction(hook):
        return bool(await hook(identity, value))
    # Project hooks usually query the ORM: run them in the database thread.
    return bool(await database_sync_to_async(hook)(identity, value))


async def notifications(identity: Identity) -> bool:
    return identity.is_authenticated


async def admin(identity: Identity) -> bool:
    return "admin" in identity.roles


async def user(identity: Identity, user_id: str) -> bool:
    return identity.user_id == user_id


async def team(identity: Identity, team_id: str) -> bool:
    return await _call_hook(broadcasting_settings.TEAM_ACCESS, identity, team_id)


async def org(identity: Identity, org_id: str) -> bool:
    return await _call_hook(broadcasting_settings.ORG_ACCESS, identity, org_id)


async def presence_member(identity: Identity, **params: str) -> dict[str, Any] | bool:
    """Any authenticated user joins; the member info is the default ``{"id", "name"}``."""
    return identity.is_authenticated


# (pattern, rule function or None, public)
BUILTIN_RULES: tuple[tuple[str, Callable[..., Any] | None, bool], ...] = (
    ("general", None, True),
    ("public", None, True),
    ("announcements", None, True),
    ("notifications", notifications, False),
    ("admin", admin, False),
    ("admin.*", admin, False),
    ("user.{user_id}", user, False),
    # Pusher's per-user channel (pusher:signin, send_to_user): never public, only its user.
    ("#server-to-user-{user_id}", user, False),
    ("team.{team_id}", team, False),
    ("org.{org_id}", org, False),
    ("presence.chat.{room_id}", presence_member, False),
    ("presence.game.{game_id}", presence_member, False),
)
