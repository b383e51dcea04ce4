"""Channel authorization: names and kinds, the rule registry, built-in rules, default-deny."""

from __future__ import annotations

import logging
import time

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.test import override_settings

from django_broadcasting import authorization
from django_broadcasting.auth.identity import ANONYMOUS, Identity, identity_for_user
from django_broadcasting.authorization import (
    ChannelKind,
    ChannelRegistry,
    aauthorize,
    authorize,
    canonical_name,
    channel,
    channel_kind,
    public_channel,
    pusher_name,
    registry,
)
from django_broadcasting.exceptions import (
    BroadcastingImproperlyConfigured,
    ChannelForbidden,
    InvalidChannelName,
    TokenExpired,
)

ALICE = Identity(
    user_id="5", roles=frozenset({"user"}), claims={"name": "Alice", "teams": ["7", 8], "orgs": ["acme"]}
)
ADMIN = Identity(user_id="1", roles=frozenset({"admin"}))


@pytest.fixture(autouse=True)
def isolated_registry():
    """Each test starts from the project's rules and leaves them as it found them."""
    saved = registry.snapshot()
    yield registry
    registry.restore(saved)


async def team_hook(identity, team_id):
    return team_id == "42" and identity.user_id == "5"


async def org_hook(identity, org_id):
    return org_id == "initech"


# -- names and kinds ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("general", "general"),
        ("private-orders.1", "orders.1"),
        ("presence-chat.1", "presence.chat.1"),
        ("presence.chat.1", "presence.chat.1"),
        ("user.5", "user.5"),
        ("private-presence-x", "presence.x"),
    ],
)
def test_canonical_name(given, canonical):
    assert canonical_name(given) == canonical


@pytest.mark.parametrize(
    "bad", ["", "private-", "presence-", "presence.", "has space", "a{b}", None, 12, "x" * 500]
)
def test_canonical_name_rejects_bad_names(bad):
    with pytest.raises(InvalidChannelName):
        canonical_name(bad)


def test_pusher_name_is_the_inverse_for_each_kind():
    assert pusher_name("presence.chat.1") == "presence-chat.1"
    assert pusher_name("user.5") == "private-user.5"
    assert pusher_name("general") == "general"
    assert pusher_name("anything.else") == "anything.else"
    for name in ("presence-chat.1", "private-user.5", "general"):
        assert pusher_name(canonical_name(name)) == name


def test_channel_kind():
    assert channel_kind("presence.chat.1") is ChannelKind.PRESENCE
    assert channel_kind("user.5") is ChannelKind.PRIVATE
    assert channel_kind("admin.dashboard") is ChannelKind.PRIVATE
    assert channel_kind("general") is ChannelKind.PUBLIC
    assert channel_kind("unmatched.name") is ChannelKind.PUBLIC


# -- public channels and STRICT_CHANNELS ----------------------------------------------------------
def test_unmatched_name_is_public_for_anyone():
    auth = authorize(ANONYMOUS, "sports.scores")
    assert (auth.channel, auth.kind, auth.member) == ("sports.scores", ChannelKind.PUBLIC, None)


@pytest.mark.parametrize("name", ["general", "public", "announcements"])
def test_builtin_public_channels(name):
    assert authorize(ANONYMOUS, name).kind is ChannelKind.PUBLIC


@override_settings(BROADCASTING={"STRICT_CHANNELS": True})
def test_strict_channels_denies_unregistered_names():
    with pytest.raises(ChannelForbidden):
        authorize(ALICE, "sports.scores")
    assert authorize(ANONYMOUS, "general").kind is ChannelKind.PUBLIC
    public_channel("sports.{sport}")
    assert authorize(ANONYMOUS, "sports.scores").kind is ChannelKind.PUBLIC


# -- private channels -----------------------------------------------------------------------------
@pytest.mark.django_db  # sync rules run in the database thread (database_sync_to_async)
def test_private_prefix_is_stripped_before_matching():
    calls = []

    @channel("orders.{order_id}")
    def order(identity, order_id):
        calls.append((identity.user_id, order_id))
        return order_id == "1"

    auth = authorize(ALICE, "private-orders.1")
    assert (auth.channel, auth.kind) == ("orders.1", ChannelKind.PRIVATE)
    assert authorize(ALICE, "orders.1").channel == "orders.1"
    with pytest.raises(ChannelForbidden):
        authorize(ALICE, "private-orders.2")
    assert calls == [("5", "1"), ("5", "1"), ("5", "2")]


def test_param_matches_one_dot_free_segment():
    @channel("orders.{order_id}")
    def order(identity, order_id):
        return True

    assert channel_kind("orders.1") is ChannelKind.PRIVATE
    assert channel_kind("orders.1.items") is ChannelKind.PUBLIC  # no rule matches: public


def test_private_name_without_rule_is_denied():
    with pytest.raises(ChannelForbidden):
        authorize(ADMIN, "private-nothing.here")


def test_anonymous_is_denied_every_private_and_presence_channel_without_calling_the_rule():
    called = []

    @channel("open.{x}")
    def open_rule(identity, x):
        called.append(x)
        return True

    for name in ("open.1", "notifications", "user.5", "presence.chat.1"):
        with pytest.raises(ChannelForbidden):
            authorize(ANONYMOUS, name)
    assert called == []


async def test_async_rule():
    @channel("async.{room}")
    async def async_rule(identity, room):
        return room == identity.user_id

    assert (await aauthorize(ALICE, "async.5")).kind is ChannelKind.PRIVATE
    with pytest.raises(ChannelForbidden):
        await aauthorize(ALICE, "async.6")


@pytest.mark.django_db(transaction=True)
async def test_sync_rule_called_from_async_code():
    @channel("sync.{room}")
    def sync_rule(identity, room):
        return room == "ok"

    assert (await aauthorize(ALICE, "sync.ok")).channel == "sync.ok"
    with pytest.raises(ChannelForbidden):
        await aauthorize(ALICE, "sync.no")


@pytest.mark.django_db
def test_rule_using_the_orm():
    user = User.objects.create_user("ormuser")
    group = Group.objects.create(name="team-7")

    @channel("group.{name}")
    def group_rule(identity, name):
        return Group.objects.filter(name=name, user__pk=identity.user_id).exists()

    identity = Identity(user_id=str(user.pk))
    with pytest.raises(ChannelForbidden):
        authorize(identity, "group.team-7")
    user.groups.add(group)
    assert authorize(identity, "group.team-7").kind is ChannelKind.PRIVATE


@pytest.mark.django_db
def test_rule_exceptions_deny(caplog):
    @channel("boom.{x}")
    def boom(identity, x):
        raise ValueError("bug in the rule")

    @channel("nope.{x}")
    def nope(identity, x):
        raise PermissionDenied("not on a Sunday")

    with caplog.at_level(logging.ERROR, logger="django_broadcasting.authorization"):
        with pytest.raises(ChannelForbidden):
            authorize(ALICE, "boom.1")
    assert "boom" in caplog.text
    with pytest.raises(ChannelForbidden, match="not on a Sunday"):
        authorize(ALICE, "nope.1")


def test_expired_identity_is_refused_private_channels_but_not_public_ones():
    expired = Identity(user_id="5", expires_at=time.time() - 10)
    with pytest.raises(TokenExpired):
        authorize(expired, "user.5")
    assert authorize(expired, "general").kind is ChannelKind.PUBLIC


# -- presence channels ----------------------------------------------------------------------------
@pytest.mark.django_db
def test_presence_rule_returns_member_info():
    @channel("presence.room.{room_id}")
    def room(identity, room_id):
        return {"id": identity.user_id, "name": identity.name, "room": int(room_id)}

    auth = authorize(ALICE, "presence-room.3")
    assert auth.kind is ChannelKind.PRESENCE
    assert auth.channel == "presence.room.3"
    assert auth.member_id == "5"
    assert auth.member_info == {"id": "5", "name": "Alice", "room": 3}
    assert auth.member == {"id": "5", "info": {"id": "5", "name": "Alice", "room": 3}}


@pytest.mark.django_db
@pytest.mark.parametrize("result", [False, None, 0])
def test_presence_rule_denies_with_falsy_result(result):
    @channel("presence.room.{room_id}")
    def room(identity, room_id):
        return result

    with pytest.raises(ChannelForbidden):
        authorize(ALICE, "presence.room.1")


@pytest.mark.django_db
def test_presence_rule_with_unserialisable_info_is_denied():
    @channel("presence.room.{room_id}")
    def room(identity, room_id):
        return {"obj": object()}

    with pytest.raises(ChannelForbidden):
        authorize(ALICE, "presence.room.1")


def test_presence_without_rule_is_denied():
    with pytest.raises(ChannelForbidden):
        authorize(ALICE, "presence.unknown.1")


@pytest.mark.parametrize("name", ["presence.chat.1", "presence-chat.1", "presence.game.9"])
def test_builtin_presence_rules(name):
    auth = authorize(ALICE, name)
    assert auth.member_info == {"id": "5", "name": "Alice"}
    assert authorize(Identity(user_id="9"), name).member_info == {"id": "9"}


# -- built-in private rules -----------------------------------------------------------------------
def test_builtin_notifications_for_any_authenticated_user():
    assert authorize(ALICE, "notifications").kind is ChannelKind.PRIVATE


@pytest.mark.parametrize("name", ["admin", "admin.notifications", "admin.dashboard", "private-admin.a.b"])
def test_builtin_admin_rules_need_the_admin_role(name):
    assert authorize(ADMIN, name).kind is ChannelKind.PRIVATE
    with pytest.raises(ChannelForbidden):
        authorize(ALICE, name)


def test_builtin_user_channel_is_only_for_that_user():
    assert authorize(ALICE, "user.5").channel == "user.5"
    assert authorize(ALICE, "private-user.5").channel == "user.5"
    with pytest.raises(ChannelForbidden):
        authorize(ALICE, "user.6")


def test_builtin_team_and_org_use_claims_by_default():
    assert authorize(ALICE, "team.7").kind is ChannelKind.PRIVATE
    assert authorize(ALICE, "team.8").kind is ChannelKind.PRIVATE  # ints in the claim compare as strings
    assert authorize(ALICE, "org.acme").kind is ChannelKind.PRIVATE
    for name in ("team.9", "org.initech"):
        with pytest.raises(ChannelForbidden):
            authorize(ALICE, name)
    with pytest.raises(ChannelForbidden):
        authorize(Identity(user_id="2"), "team.7")


@override_settings(
    BROADCASTING={
        "TEAM_ACCESS": "tests.unit.test_authorization.team_hook",
        "ORG_ACCESS": "tests.unit.test_authorization.org_hook",
    }
)
def test_team_and_org_hooks_are_overridable():
    assert authorize(ALICE, "team.42").channel == "team.42"
    with pytest.raises(ChannelForbidden):
        authorize(ALICE, "team.7")
    assert authorize(ALICE, "org.initech").channel == "org.initech"
    with pytest.raises(ChannelForbidden):
        authorize(ALICE, "org.acme")


@override_settings(BROADCASTING={"TEAM_ACCESS": "no.such.module.hook"})
def test_bad_hook_path_is_improperly_configured():
    with pytest.raises(ImproperlyConfigured, match="TEAM_ACCESS"):
        authorize(ALICE, "team.7")


@pytest.mark.django_db
def test_user_rule_overrides_builtin_with_same_pattern():
    @channel("user.{user_id}")
    def anyone(identity, user_id):
        return True

    assert authorize(ALICE, "user.6").channel == "user.6"


def test_user_rule_is_tried_before_builtin_wildcards():
    public_channel("admin.public")
    assert authorize(ANONYMOUS, "admin.public").kind is ChannelKind.PUBLIC


@override_settings(BROADCASTING={"BUILTIN_CHANNELS": False})
def test_builtins_can_be_switched_off():
    assert authorize(ANONYMOUS, "user.5").kind is ChannelKind.PUBLIC


# -- registry -------------------------------------------------------------------------------------
def test_first_registered_rule_wins_and_reregistering_replaces():
    reg = ChannelRegistry(builtins=False)
    reg.register("a.{x}", lambda identity, x: False, name="first")
    reg.register("a.*", lambda identity: True, name="second")
    rule, params = reg.match("a.1")
    assert (rule.name, params) == ("first", {"x": "1"})
    reg.register("a.{x}", lambda identity, x: True, name="replaced")
    assert reg.match("a.1")[0].name == "replaced"
    assert [r.name for r in reg.rules] == ["replaced", "second"]
    assert reg.match("b.1") is None
    reg.reset()
    assert reg.match("a.1") is None


@pytest.mark.django_db
def test_params_by_position_when_the_names_differ():
    """Laravel passes parameters by position; a rule ported with other names still works."""
    seen = []

    async def laravel_style(identity, team, member):
        seen.append((team, member))
        return True

    reg = ChannelRegistry(builtins=False)
    reg.register("teams.{team_id}.members.{member_id}", laravel_style)
    authorize(ALICE, "teams.3.members.9", registry=reg)
    assert seen == [("3", "9")]


@pytest.mark.django_db
def test_separate_registry_can_be_passed():
    reg = ChannelRegistry(builtins=False)
    reg.register("only.here", lambda identity: True)
    assert authorize(ALICE, "only.here", registry=reg).kind is ChannelKind.PRIVATE
    assert authorize(ALICE, "user.6", registry=reg).kind is ChannelKind.PUBLIC  # no built-ins there


@pytest.mark.parametrize("pattern", ["", "a b", "a.{x", "a.{x}.{x}", "a.{1x}"])
def test_bad_patterns_are_improperly_configured(pattern):
    with pytest.raises(ImproperlyConfigured):
        ChannelRegistry().register(pattern, lambda identity, **kw: True)


def test_rule_signature_must_accept_the_params():
    with pytest.raises(ImproperlyConfigured, match="must accept"):
        ChannelRegistry().register("x.{a}", lambda identity, b, c: True)
    with pytest.raises(ImproperlyConfigured, match="must accept"):
        ChannelRegistry().register("x.{a}", lambda identity: True)
    with pytest.raises(ImproperlyConfigured):
        ChannelRegistry().register("x.{a}")  # no function and not public
    with pytest.raises(ImproperlyConfigured):
        ChannelRegistry().register("presence.x", public=True)


def test_autodiscover_is_idempotent(monkeypatch):
    import django.utils.module_loading as module_loading

    calls = []
    monkeypatch.setattr(module_loading, "autodiscover_modules", lambda *names: calls.append(names))
    monkeypatch.setattr(authorization, "_discovered", False)
    authorization.autodiscover()
    authorization.autodiscover()
    assert calls == [("broadcast_channels",)]


@pytest.mark.django_db
def test_session_user_roles_and_groups():
    staff = User.objects.create_user("staff", is_staff=True, first_name="Sam", last_name="Staff")
    staff.groups.add(Group.objects.create(name="editors"))
    identity = identity_for_user(staff)
    assert identity.user_id == str(staff.pk)
    assert identity.roles == {"staff", "admin", "editors"}
    assert identity.name == "Sam Staff"
    assert identity.user is staff
    assert authorize(identity, "admin.dashboard").kind is ChannelKind.PRIVATE
    plain = identity_for_user(User.objects.create_user("plain"))
    assert plain.roles == frozenset() and plain.name == "plain"
    with pytest.raises(ChannelForbidden):
        authorize(plain, "admin")


def test_identity_value():
    import django_broadcasting.auth as auth_package

    identity = Identity(user_id=5, roles=["a"], permissions=("p",), claims={"x": 1}, expires_at=100.0)
    assert identity.user_id == "5" and identity.roles == frozenset({"a"}) and identity.permissions == {"p"}
    assert identity.has_role("a") and identity.has_permission("p") and not identity.has_role("b")
    with pytest.raises(TypeError):
        identity.claims["x"] = 2  # claims are read-only
    assert hash(identity) == hash(Identity(user_id="5", roles={"a"}, permissions={"p"}, expires_at=100.0))
    assert identity.is_expired(now=101) and not identity.is_expired(now=99)
    assert identity.is_expired(now=101) and not identity.is_expired(now=101, leeway=5)
    assert not Identity(user_id="1").is_expired()
    assert ANONYMOUS.is_anonymous and not ANONYMOUS.is_authenticated and ANONYMOUS.name is None
    assert auth_package.Identity is Identity and auth_package.ANONYMOUS is ANONYMOUS
    with pytest.raises(AttributeError):
        auth_package.nothing_here  # noqa: B018


@pytest.mark.django_db
def test_sync_get_user():
    from django_broadcasting.auth.identity import get_user

    user = User.objects.create_user("syncget")
    assert get_user(Identity(user_id=str(user.pk))) == user
    assert get_user(Identity(user_id="abc")) is None
    assert get_user(ANONYMOUS) is None
    assert get_user(identity_for_user(user)) is user


def test_docs_examples_run():
    """The ```python blocks of docs/authorization.md run (```py blocks are fragments)."""
    from tests.docs_blocks import run_blocks

    run_blocks("authorization.md", namespace={})


@pytest.mark.parametrize("name", ["admin.x\n", "private-user.5\n", "presence-chat.1\n", "general\n"])
def test_a_trailing_newline_is_an_invalid_name_not_a_public_channel(name):
    # "admin.*" did not match "admin.x\n" ("." stops at a newline) and "$" let it validate: public.
    with pytest.raises(InvalidChannelName):
        authorize(ANONYMOUS, name)
    with pytest.raises(BroadcastingImproperlyConfigured):
        ChannelRegistry().register("orders.{id}\n", lambda identity, id: True)
