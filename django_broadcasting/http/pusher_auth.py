"""``/broadcasting/auth`` and ``/broadcasting/user-auth``: Pusher-style signatures for Laravel Echo.

pusher-js asks these endpoints before it subscribes to a ``private-`` or ``presence-`` channel
(``socket_id`` and ``channel_name``) or signs a user in (``socket_id``). The request's user is a
Bearer JWT (``Authorization: Bearer ...``, Echo's ``bearerToken`` option) or the Django session;
session requests must pass Django's CSRF check, with the token in ``X-CSRFToken`` or in
Laravel's ``X-CSRF-TOKEN`` header (Echo's ``csrfToken`` option). Bodies may be form-encoded
(pusher-js) or JSON.

The channel rule decides, exactly as for a native subscription: the answer is
``{"auth": "<key>:<hmac>"}`` plus ``channel_data`` (``{"user_id", "user_info"}``, the
presence rule's member info) for presence channels, and ``shared_secret`` (the channel's key,
see ``encryption``) for end-to-end encrypted ``private-encrypted-*`` channels; 403 when a rule
refuses or when encrypted channels are not configured (no master key for the app), 400 for a bad
request, 401 for a Bearer token that does not verify.

Several apps (``PUSHER_APPS``): the answer is signed with the secret of the app the client's
socket belongs to (and ``shared_secret`` made with that app's encryption key). That app is named
by an ``app`` parameter (its key or id, in the query string or the body: pusher-js
``channelAuthorization: {params: {app: key}}``), else read from the socket id (which carries the
app's position when several apps are configured), else it is the default app. The channel rules
are the project's, shared by every app.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..auth.identity import Identity, aidentity_from_request
from ..authorization import ChannelKind, aauthorize
from ..encryption import encryption_master_key, is_encrypted_channel, shared_secret_base64
from ..exceptions import AuthenticationFailed, ChannelForbidden, InvalidChannelName
from ..messages import JSONTooDeep, parse_json
from ..pusher_apps import PusherApp, app_by_id, app_by_key, app_for_socket_id, default_app
from ..pusher_signing import SOCKET_ID_RE, sign_channel, sign_user

LARAVEL_CSRF_HEADER = "HTTP_X_CSRF_TOKEN"


class AuthRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def _refused(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _params(request: HttpRequest) -> dict[str, Any]:
    # Django answers a body it cannot parse with a 400 too, but logs a traceback each time: a body
    # is the client's to get wrong, so it gets its 400 here, with a line saying why.
    content_type = request.content_type or ""
    try:
        if content_type == "application/json":
            try:
                body = parse_json(request.body or b"{}")
            except JSONTooDeep as exc:
                raise AuthRefused(400, str(exc)) from None
            except ValueError:
                raise AuthRefused(400, "Malformed JSON body.") from None
            if not isinstance(body, dict):
                raise AuthRefused(400, "The JSON body must be an object.")
            return body
        return request.POST.dict()
    except RequestDataTooBig:
        raise AuthRefused(413, "Request body too large.") from None
    except (MultiPartParserError, SuspiciousOperation) as exc:
        raise AuthRefused(400, f"Malformed request body: {str(exc)[:100]}") from None


def _socket_id(params: dict[str, Any]) -> str:
    socket_id = params.get("socket_id")
    if not isinstance(socket_id, str) or not SOCKET_ID_RE.fullmatch(socket_id):
        raise AuthRefused(400, "socket_id is missing or malformed (expected digits.digits).")
    return socket_id


def _app(request: HttpRequest, params: dict[str, Any], socket_id: str) -> PusherApp:
    """The app to sign for: the ``app`` parameter (key or id), else the socket id's, else the default."""
    named = request.GET.get("app") or params.get("app")
    if named is not None:
        if not isinstance(named, str):
            raise AuthRefused(400, "app must be an app key or id (a string).")
        app = app_by_key(named) or app_by_id(named)
        if app is None:
            raise AuthRefused(
                400, f"Unknown app {named[:64]!r}: give the key or id of an app of PUSHER_APPS."
            )
        return app
    return app_for_socket_id(socket_id) or default_app()


def _csrf_failure(request: HttpRequest) -> str | None:
    """Run Django's CSRF check; return the reason it failed, or None."""
    header = settings.CSRF_HEADER_NAME
    if header not in request.META and LARAVEL_CSRF_HEADER in request.META:
        # Laravel Echo sends the token as X-CSRF-TOKEN.
        request.META[header] = request.META[LARAVEL_CSRF_HEADER]
    middleware = CsrfViewMiddleware(lambda req: None)
    request.csrf_processing_done = False
    response = middleware.process_view(request, None, (), {})
    if response is None:
        return None
    return "CSRF verification failed: send the csrftoken cookie's value in X-CSRFToken (or X-CSRF-TOKEN)."


async def _identity(request: HttpRequest) -> Identity:
    try:
        identity = await aidentity_from_request(request)
    except AuthenticationFailed as exc:
        raise AuthRefused(401, exc.detail) from None
    # Only a verified token (an identity with claims) is exempt from CSRF: an "Authorization:
    # Bearer" header whose token is blank falls back to the session, which is cookie-borne.
    if identity.is_authenticated and not identity.claims:
        # A session identity: the browser sends the cookie on any site's behalf, so demand CSRF.
        problem = await sync_to_async(_csrf_failure)(request)
        if problem:
            raise AuthRefused(403, problem)
    return identity


@csrf_exempt
@require_POST
async def channel_auth(request: HttpRequest) -> JsonResponse:
    """Sign a ``private-``/``presence-`` subscription for the request's user, if the rule allows."""
    try:
        params = _params(request)
        socket_id = _socket_id(params)
        app = _app(request, params, socket_id)
        channel_name = params.get("channel_name")
        if not isinstance(channel_name, str) or not channel_name:
            raise AuthRefused(400, "channel_name is required.")
        identity = await _identity(request)
        try:
            auth = await aauthorize(identity, channel_name, app=app)
        except InvalidChannelName as exc:
            raise AuthRefused(400, exc.detail) from None
        except (ChannelForbidden, AuthenticationFailed) as exc:
            raise AuthRefused(403, exc.detail) from None
    except AuthRefused as exc:
        return _refused(exc.status, exc.message)
    if auth.kind is ChannelKind.PRESENCE:
        channel_data = json.dumps(
            {"user_id": auth.member_id, "user_info": auth.member_info or {}}, separators=(",", ":")
        )
        return JsonResponse(
            {"auth": sign_channel(socket_id, channel_name, channel_data, app), "channel_data": channel_data}
        )
    answer = {"auth": sign_channel(socket_id, channel_name, app=app)}
    if is_encrypted_channel(channel_name):
        answer["shared_secret"] = shared_secret_base64(channel_name, encryption_master_key(app))
    return JsonResponse(answer)


@csrf_exempt
@require_POST
async def user_auth(request: HttpRequest) -> JsonResponse:
    """Sign a ``pusher:signin`` for the request's user (``#server-to-user-{id}`` events)."""
    try:
        params = _params(request)
        socket_id = _socket_id(params)
        app = _app(request, params, socket_id)
        identity = await _identity(request)
        if not identity.is_authenticated:
            raise AuthRefused(403, "Sign-in needs an authenticated user.")
    except AuthRefused as exc:
        return _refused(exc.status, exc.message)
    user: dict[str, Any] = {"id": identity.user_id}
    if identity.name:
        user["user_info"] = {"name": identity.name}
    user_data = json.dumps(user, separators=(",", ":"))
    return JsonResponse({"auth": sign_user(socket_id, user_data, app), "user_data": user_data})
