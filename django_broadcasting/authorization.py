"""Channel authorization: the ``@channel`` rule registry, channel kinds and ``aauthorize``.

Like Laravel's ``routes/channels.php``, each app declares rules in its own
``broadcast_channels.py``::

    from django_broadcasting import channel

    @channel("orders.{order_id}")
    def order(identity, order_id):
        return Order.objects.filter(pk=order_id, customer_id=identity.user_id).exists()

Names and kinds:

* ``presence.X`` (or ``presence-X``) is a presence channel; its rule returns the member's
  public info (a dict), or False/None to deny.
* ``private-X`` is the channel ``X``; ``X`` is private when a rule matches it (or when asked
  for with the ``private-`` prefix); a private or presence name that no rule matches is denied.
* ``private-encrypted-X`` is an end-to-end encrypted channel of its own (not ``X``), private,
  authorized by the (non-public) rule of ``X``; refused while no encryption master key is set.
* Any other name is public, unless ``STRICT_CHANNELS`` is on (then only names registered as
  public are).

Rules are tried in registration order (first match wins, as in Laravel); the built-in rules
of ``django_broadcasting.builtin_channels`` (old name: ``broadcast_channels``) are tried after every user rule, so a user rule
always overrides them. Authorization runs on every subscribe; nothing is cached.
"""

from __future__ import annotations

import enum
import inspect
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import iscoroutinefunction
from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder

from .auth.identity import Identity
from .conf import broadcasting_settings
from .encryption import encryption_master_key
from .exceptions import (
    BroadcastingImproperlyConfigured,
    ChannelForbidden,
    InvalidChannelName,
    TokenExpired,
)
from .messages import APP_NAMESPACE, validate_channel_name
from .sync import sync_shim

logger = logging.getLogger("django_broadcasting.authorization")

PRIVATE_PREFIX = "private-"
ENCRYPTED_PREFIX = "private-encrypted-"
PRESENCE_PREFIX = "presence-"
PRESENCE_NAMESPACE = "presence."

_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PATTERN_CHARS_RE = re.compile(r"[A-Za-z0-9_\-=@,.;#:{}*]+")


class ChannelKind(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    PRESENCE = "presence"


def canonical_name(name: str) -> str:
    """Return the one name of a channel, whatever the client called it.

    ``private-X`` is ``X`` and ``presence-X`` is ``presence.X`` (so Laravel Echo's
    ``private('orders.1')`` and ``join('chat.1')`` meet the ``orders.1`` and
    ``presence.chat.1``); other names are returned unchanged. ``private-encrypted-X`` keeps its
    name: an end-to-end encrypted channel is a channel of its own (its events are sealed with
    its own key), authorized by the rule of ``X``. Raise ``InvalidChannelName``.
    """
    validate_channel_name(name)
    if name.startswith(ENCRYPTED_PREFIX):
        rule_name(name)  # validates what follows the prefix
        return name
    if name.startswith(PRIVATE_PREFIX):
        name = name[len(PRIVATE_PREFIX) :]
        if not name:
            raise InvalidChannelName("Channel name 'private-' names no channel.")
    if name.startswith(PRESENCE_PREFIX):
        rest = name[len(PRESENCE_PREFIX) :]
        if not rest:
            raise InvalidChannelName("Channel name 'presence-' names no channel.")
        name = PRESENCE_NAMESPACE + rest
    elif name == PRESENCE_NAMESPACE:
        raise InvalidChannelName("Channel name 'presence.' names no channel.")
    if name.startswith(APP_NAMESPACE):
        # The hub's names of other apps' channels (pusher_apps): never a client's to choose.
        raise InvalidChannelName(f"Channel names starting with {APP_NAMESPACE!r} are reserved.")
    return name


def rule_name(canonical: str) -> str:
    """Return the name the rules match for ``canonical``: ``X`` for ``private-encrypted-X``, else itself."""
    if not canonical.startswith(ENCRYPTED_PREFIX):
        return canonical
    rest = canonical[len(ENCRYPTED_PREFIX) :]
    if not rest:
        raise InvalidChannelName("Channel name 'private-encrypted-' names no channel.")
    if rest.startswith((PRIVATE_PREFIX, PRESENCE_PREFIX, PRESENCE_NAMESPACE)):
        raise InvalidChannelName(
            f"Channel name {canonical!r}: an encrypted channel is private, never a presence or doubly private one."
        )
    return rest


@dataclass(frozen=True)
class Rule:
    """One registered channel pattern and the function that authorizes it."""

    pattern: str
    func: Callable[..., Any] | None
    name: str
    public: bool = False
    regex: re.Pattern[str] = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    params: tuple[str, ...] = ()
    positional: bool = False  # pass the parameters by position (Laravel style), see _positional_call

    @property
    def kind(self) -> ChannelKind:
        if self.pattern.startswith(PRESENCE_NAMESPACE):
            return ChannelKind.PRESENCE
        return ChannelKind.PUBLIC if self.public else ChannelKind.PRIVATE


def _compile(pattern: str) -> tuple[str, re.Pattern[str], tuple[str, ...]]:
    """Return the canonical pattern, its regex and parameter names; raise on a bad pattern."""
    if not isinstance(pattern, str) or not pattern or not _PATTERN_CHARS_RE.fullmatch(pattern):
        raise BroadcastingImproperlyConfigured(f"Invalid channel pattern {pattern!r}.")
    if pattern.startswith(PRIVATE_PREFIX):
        pattern = pattern[len(PRIVATE_PREFIX) :]
    if pattern.startswith(PRESENCE_PREFIX):
        pattern = PRESENCE_NAMESPACE + pattern[len(PRESENCE_PREFIX) :]
    params = tuple(_PARAM_RE.findall(pattern))
    if len(set(params)) != len(params):
        raise BroadcastingImproperlyConfigured(f"Channel pattern {pattern!r} repeats a parameter.")
    parts: list[str] = []
    position = 0
    for match in _PARAM_RE.finditer(pattern):
        parts.append(_literal(pattern[position : match.start()], pattern))
        parts.append(f"(?P<{match.group(1)}>[^.]+)")
        position = match.end()
    parts.append(_literal(pattern[position:], pattern))
    return pattern, re.compile("".join(parts)), params


def _literal(text: str, pattern: str) -> str:
    if "{" in text or "}" in text:
        raise BroadcastingImproperlyConfigured(f"Channel pattern {pattern!r} has an unbalanced brace.")
    # "*" matches one or more characters, dots included: "admin.*" covers "admin.x.y".
    return ".+".join(re.escape(piece) for piece in text.split("*"))


def _positional_call(func: Callable[..., Any], pattern: str, params: tuple[str, ...]) -> bool:
    """Return whether ``func`` takes the parameters by position rather than by name.

    By name (``def order(identity, order_id)``) is the rule; by position, as Laravel passes
    them, is accepted when the names differ (``def order(identity, id)``). Neither raises.
    """
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False  # builtins and C callables: nothing to check
    try:
        signature.bind(None, **{param: "" for param in params})
        return False
    except TypeError as exc:
        error = exc
    try:
        signature.bind(None, *params)
        return True
    except TypeError:
        raise BroadcastingImproperlyConfigured(
            f"Channel rule {getattr(func, '__qualname__', func)!r} for {pattern!r} must accept "
            f"(identity, {', '.join(params)}): {error}."
        ) from None


class ChannelRegistry:
    """The channel rules, like ``django.contrib.admin.site``: register, match, reset."""

    def __init__(self, *, builtins: bool = True) -> None:
        self._rules: dict[str, Rule] = {}  # insertion-ordered: first match wins
        self._with_builtins = builtins
        self._builtins: dict[str, Rule] | None = None

    def register(
        self,
        pattern: str,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        public: bool = False,
    ) -> Rule:
        """Register ``func`` for ``pattern``; registering a pattern again replaces its rule.

        ``public=True`` declares a public channel (``func`` may be omitted): needed only with
        ``STRICT_CHANNELS``, or to mark a name public that a broader rule would match.
        """
        rule = self._make_rule(pattern, func, name=name, public=public)
        self._rules[rule.pattern] = rule
        return rule

    def unregister(self, pattern: str) -> None:
        self._rules.pop(_compile(pattern)[0], None)

    def _make_rule(
        self, pattern: str, func: Callable[..., Any] | None, *, name: str | None, public: bool
    ) -> Rule:
        canonical, regex, params = _compile(pattern)
        if public and canonical.startswith(PRESENCE_NAMESPACE):
            raise BroadcastingImproperlyConfigured(f"Presence channel {pattern!r} cannot be public.")
        if func is None and not public:
            raise BroadcastingImproperlyConfigured(
                f"Channel rule {pattern!r} needs a function (or public=True)."
            )
        positional = False
        if func is not None:
            if not callable(func):
                raise BroadcastingImproperlyConfigured(f"Channel rule for {pattern!r} is not callable.")
            positional = _positional_call(func, canonical, params)
        label = name or (getattr(func, "__name__", None) if func is not None else None) or canonical
        return Rule(canonical, func, label, public, regex, params, positional)

    def _builtin_rules(self) -> dict[str, Rule]:
        if self._builtins is None:
            from .builtin_channels import BUILTIN_RULES

            rules = {}
            for pattern, func, public in BUILTIN_RULES:
                rule = self._make_rule(pattern, func, name=None, public=public)
                rules[rule.pattern] = rule
            self._builtins = rules
        return self._builtins

    @property
    def rules(self) -> list[Rule]:
        """Return the user rules in matching order (built-ins excluded)."""
        return list(self._rules.values())

    def match(self, canonical: str) -> tuple[Rule, dict[str, str]] | None:
        """Return the first rule matching ``canonical`` and its parameters, or None."""
        tiers = [self._rules]
        if self._with_builtins and broadcasting_settings.BUILTIN_CHANNELS:
            tiers.append(self._builtin_rules())
        for rules in tiers:
            for rule in rules.values():
                found = rule.regex.fullmatch(canonical)
                if found is not None:
                    return rule, found.groupdict()
        return None

    def reset(self) -> None:
        """Forget every user rule (built-ins stay); for tests."""
        self._rules.clear()

    def snapshot(self) -> dict[str, Rule]:
        return dict(self._rules)

    def restore(self, snapshot: dict[str, Rule]) -> None:
        self._rules = dict(snapshot)


registry = ChannelRegistry()


def channel(pattern: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the authorization rule of ``pattern``.

    The function receives the ``Identity`` and the pattern's parameters as keyword arguments;
    it may be sync (it runs in the database thread, so the ORM works) or async. Private rules
    return a bool; presence rules return the member's public info dict (True gives the
    default ``{"id": ..., "name": ...}``), or False/None to deny. Options: ``name``, ``public``.
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        registry.register(pattern, func, **options)
        return func

    return decorator


def public_channel(*patterns: str) -> None:
    """Declare ``patterns`` public (for ``STRICT_CHANNELS``, or to carve out of a broad rule)."""
    for pattern in patterns:
        registry.register(pattern, None, public=True)


@dataclass(frozen=True)
class Authorization:
    """The outcome of a successful ``aauthorize``.

    ``channel`` is the canonical name. For presence channels ``member_id`` is the user id (one
    member per user however many connections) and ``member_info`` the JSON-safe dict the rule
    returned; both are None for public and private channels.
    """

    channel: str
    kind: ChannelKind
    member_id: str | None = None
    member_info: dict[str, Any] | None = field(default=None, hash=False)
    rule: str | None = None

    @property
    def member(self) -> dict[str, Any] | None:
        """Return ``{"id": member_id, "info": member_info}`` for presence channels, else None."""
        if self.member_id is None:
            return None
        return {"id": self.member_id, "info": self.member_info or {}}


def channel_kind(canonical: str, *, registry: ChannelRegistry | None = None) -> ChannelKind:
    """Return the kind of a canonical channel name (presence by prefix, private by rule or as encrypted)."""
    if canonical.startswith(PRESENCE_NAMESPACE):
        return ChannelKind.PRESENCE
    if canonical.startswith(ENCRYPTED_PREFIX):
        return ChannelKind.PRIVATE
    found = (registry or _default_registry()).match(canonical)
    if found is None:
        return ChannelKind.PUBLIC
    return found[0].kind


def pusher_name(canonical: str, *, registry: ChannelRegistry | None = None) -> str:
    """Return the name a Pusher client uses for ``canonical`` (``presence-X``, ``private-X`` or ``X``)."""
    if canonical.startswith(PRESENCE_NAMESPACE):
        return PRESENCE_PREFIX + canonical[len(PRESENCE_NAMESPACE) :]
    if canonical.startswith(ENCRYPTED_PREFIX):
        return canonical
    if channel_kind(canonical, registry=registry) is ChannelKind.PRIVATE:
        return PRIVATE_PREFIX + canonical
    return canonical


def pusher_client_name(canonical: str) -> str:
    """Return the name a Pusher client sees for ``canonical``; reserved ``#`` names are shown as they are."""
    if canonical.startswith("#"):
        return canonical  # "#server-to-user-5" and other reserved names
    return pusher_name(canonical)


def _default_registry() -> ChannelRegistry:
    return registry


def default_member_info(identity: Identity) -> dict[str, Any]:
    """Return the member info the built-in presence rules give: the user's id and any name."""
    info: dict[str, Any] = {"id": identity.user_id}
    name = identity.name
    if name:
        info["name"] = name
    return info


async def _call_rule(rule: Rule, identity: Identity, params: Mapping[str, str]) -> Any:
    func = rule.func
    if func is None:
        return True
    args: tuple[Any, ...] = (identity, *params.values()) if rule.positional else (identity,)
    kwargs = {} if rule.positional else params
    if iscoroutinefunction(func):
        return await func(*args, **kwargs)
    result = await database_sync_to_async(func)(*args, **kwargs)
    if inspect.isawaitable(result):  # a sync callable returning a coroutine (e.g. functools.partial)
        result = await result
    return result


async def aauthorize(
    identity: Identity, name: str, *, registry: ChannelRegistry | None = None, app: Any = None
) -> Authorization:
    """Return the ``Authorization`` for ``identity`` to subscribe to ``name``.

    Raise ``InvalidChannelName`` for a bad name, ``ChannelForbidden`` when the identity may
    not join (default-deny for private and presence channels), and ``TokenExpired`` when a
    private or presence channel is asked for with an expired token. ``app`` is the Pusher app
    served (``PUSHER_APPS``; the default app when None): its key enables encrypted channels.
    """
    rules = registry or _default_registry()
    canonical = canonical_name(name)
    presence = canonical.startswith(PRESENCE_NAMESPACE)
    asked_private = name.startswith(PRIVATE_PREFIX)
    encrypted = canonical.startswith(ENCRYPTED_PREFIX)
    if encrypted and encryption_master_key(app) is None:
        raise ChannelForbidden(
            "Encrypted channels are not enabled on this server: set PUSHER_ENCRYPTION_MASTER_KEY_BASE64."
        )
    found = rules.match(rule_name(canonical))

    if found is None:
        if presence or asked_private:
            raise ChannelForbidden(f"No authorization rule for channel {rule_name(canonical)!r}.")
        if broadcasting_settings.STRICT_CHANNELS:
            raise ChannelForbidden(f"Channel {canonical!r} is not registered (STRICT_CHANNELS).")
        return Authorization(canonical, ChannelKind.PUBLIC)

    rule, params = found
    if rule.public and encrypted:
        # Default-deny: a public rule lets anyone in, which an end-to-end encrypted channel must not.
        raise ChannelForbidden(
            f"Channel {rule_name(canonical)!r} is public; an encrypted channel needs a private rule."
        )
    if rule.public and not presence:
        return Authorization(canonical, ChannelKind.PUBLIC, rule=rule.name)
    if not identity.is_authenticated:
        raise ChannelForbidden(f"Channel {canonical!r} requires authentication.")
    if identity.is_expired(leeway=broadcasting_settings.JWT_LEEWAY):
        raise TokenExpired()

    try:
        result = await _call_rule(rule, identity, params)
    except (ChannelForbidden, TokenExpired, ImproperlyConfigured):
        # Configuration errors must surface, not read as "forbidden".
        raise
    except PermissionDenied as exc:
        raise ChannelForbidden(str(exc) or None) from None
    except Exception:
        # A crashing rule denies (and is logged) rather than tearing down the connection.
        logger.exception("Channel rule %r raised for channel %r", rule.name, canonical)
        raise ChannelForbidden() from None

    if presence:
        if result is True:
            info: Any = default_member_info(identity)
        elif isinstance(result, Mapping):
            info = result
        else:
            raise ChannelForbidden()
        try:
            # Round-trip through JSON: a copy the rule cannot mutate later, and no surprises at encode time.
            member_info = json.loads(json.dumps(dict(info), cls=DjangoJSONEncoder))
        except (TypeError, ValueError):
            logger.error("Presence rule %r returned member info that is not JSON: %r", rule.name, info)
            raise ChannelForbidden() from None
        return Authorization(canonical, ChannelKind.PRESENCE, identity.user_id, member_info, rule.name)

    if not result:
        raise ChannelForbidden()
    return Authorization(canonical, ChannelKind.PRIVATE, rule=rule.name)


authorize = sync_shim(aauthorize)


_discovered = False


def autodiscover() -> None:
    """Import each installed app's ``broadcast_channels`` module, once."""
    global _discovered
    if _discovered:
        return
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("broadcast_channels")
    _discovered = True
