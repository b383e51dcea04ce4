"""``{% broadcasting_client %}``: connect a page to the broadcasting server in two lines.

    {% load broadcasting %}
    {% broadcasting_client %}

renders the client's configuration as a JSON ``<script>`` element and a module script that
imports ``broadcasting.js`` and puts a connected client on ``window.Echo`` (the name Laravel
pages use; ``{% broadcasting_client global="bc" %}`` picks another). Module scripts run in
document order, so any later ``<script type="module">`` can use it at once, or wait for the
``broadcasting:ready`` event on ``document``.

The configuration holds:

* ``url``: ``BROADCASTING["CLIENT_URL"]``, or ``ws(s)://<the request's host>/ws``;
* ``token``: a short-lived JWT for the logged-in user (``CLIENT_TOKEN_TTL`` seconds), or null
  for anonymous visitors (who still get public channels);
* ``tokenUrl``: the refresh endpoint (``/broadcasting/token``) the client calls when the
  server says the token expired;
* ``clientUrl``: the static URL of ``broadcasting.js``;
* ``socketIdHeader``: the header that makes ``to_others()`` skip the sender.

``{% broadcasting_config %}`` renders only the JSON element, for pages that build the client
themselves. The tag reads the request from the context (``context_processors.request``);
without one the URL is the path alone (the page's own host, resolved in the browser) and no
token is minted.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString

from ..conf import broadcasting_settings
from ..context import HEADER as SOCKET_ID_HEADER
from ..http.token import mint_client_token

register = template.Library()

CONFIG_ELEMENT_ID = "broadcasting-config"
CLIENT_STATIC_PATH = "django_broadcasting/broadcasting.js"
WEBSOCKET_PATH = "/ws"


def websocket_url(request: Any) -> str:
    """Return the WebSocket URL for pages served by ``request``.

    ``CLIENT_URL`` wins: a full ``ws://``/``wss://`` URL is used as is, a path is joined to the
    request's host. Otherwise the server that served the page serves the WebSocket too (daphne
    and uvicorn do both), so the URL is the page's host with ``ws``/``wss`` and ``/ws``.
    """
    configured = broadcasting_settings.CLIENT_URL
    if configured and "://" in configured:
        return configured
    path = configured or WEBSOCKET_PATH
    if not path.startswith("/"):
        path = "/" + path
    if request is None:
        # No request in the context (a template rendered outside a view): let the browser resolve it.
        return path
    scheme = "wss" if request.is_secure() else "ws"
    return f"{scheme}://{request.get_host()}{path}"


def client_config(request: Any) -> dict[str, Any]:
    """Return the configuration the JavaScript client needs for ``request``'s user."""
    # Only request.user gets a token, never a context variable that happens to be called "user"
    # (a profile page may show someone else).
    user = getattr(request, "user", None)
    token = None
    if user is not None and getattr(user, "is_authenticated", False):
        token, _ttl = mint_client_token(user)
    try:
        token_url: str | None = reverse("django_broadcasting:token")
    except NoReverseMatch:
        # The project did not include django_broadcasting.http.urls: no refresh, the token just expires.
        token_url = None
    return {
        "url": websocket_url(request),
        "token": token,
        "tokenUrl": token_url,
        "clientUrl": static(CLIENT_STATIC_PATH),
        "socketIdHeader": SOCKET_ID_HEADER,
        "userId": str(user.pk) if token is not None else None,
    }


# The module script ({0} client URL, {1} element id, {2} global name). It reads the JSON
# element (data is never interpolated into JS, so no escaping traps) and
# builds the client with a refresh callback that asks tokenUrl for a new token.
_BOOT_SCRIPT = """<script type="module">
import {{ Broadcasting }} from "{0}";
const config = JSON.parse(document.getElementById("{1}").textContent);
if (config.url.startsWith("/")) {{
  config.url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + config.url;
}}
async function refreshToken() {{
  if (!config.tokenUrl) return null;
  const response = await fetch(config.tokenUrl, {{credentials: "same-origin", headers: {{"Accept": "application/json"}}}});
  if (!response.ok) return null;
  const body = await response.json();
  config.token = body.token;
  return body.token;
}}
const client = new Broadcasting({{url: config.url, token: config.token, refreshToken}});
window["{2}"] = client;
document.dispatchEvent(new CustomEvent("broadcasting:ready", {{detail: client}}));
</script>"""


def _config_from(context: template.Context) -> dict[str, Any]:
    # Without a request (no 'request' context processor, or rendered outside a view) the URL is
    # the path alone, resolved against the page's own host by the boot script, and no token.
    return client_config(context.get("request"))


@register.simple_tag(takes_context=True)
def broadcasting_config(context: template.Context) -> SafeString:
    """Render the client configuration as ``<script type="application/json" id="broadcasting-config">``."""
    return json_script(_config_from(context), CONFIG_ELEMENT_ID)


@register.simple_tag(takes_context=True)
def broadcasting_client(context: template.Context, **options: Any) -> SafeString:
    """Render the configuration and a module script that connects ``window.Echo`` (or ``global``)."""
    global_name = str(options.pop("global", "Echo"))
    if options:
        raise template.TemplateSyntaxError(
            f"{{% broadcasting_client %}} got unknown option(s): {', '.join(sorted(options))}."
        )
    if not global_name.isidentifier():
        raise template.TemplateSyntaxError(
            f"{{% broadcasting_client %}}: global={global_name!r} is not a JS name."
        )
    config = _config_from(context)
    boot = format_html(
        _BOOT_SCRIPT,
        config["clientUrl"],
        CONFIG_ELEMENT_ID,
        global_name,
    )
    return json_script(config, CONFIG_ELEMENT_ID) + boot
