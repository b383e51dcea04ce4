"""``{% broadcasting_client %}`` / ``{% broadcasting_config %}`` and the token refresh endpoint."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template, TemplateSyntaxError

from django_broadcasting.auth.jwt import decode_token

pytestmark = pytest.mark.django_db


def render(request, source: str = "{% load broadcasting %}{% broadcasting_client %}") -> str:
    return Template(source).render(Context({"request": request}))


def config_of(html: str) -> dict:
    found = re.search(r'<script id="broadcasting-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, html
    return json.loads(found.group(1))


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ada", password="pw", first_name="Ada", last_name="L")


def request_for(rf, user=None, secure: bool = False, host: str = "example.test:8000"):
    request = rf.get("/", secure=secure, HTTP_HOST=host)
    request.user = user or AnonymousUser()
    return request


def test_config_for_a_logged_in_user(rf, user, settings):
    settings.BROADCASTING = {"CLIENT_TOKEN_TTL": 120}
    config = config_of(render(request_for(rf, user)))
    assert config["url"] == "ws://example.test:8000/ws"
    assert config["tokenUrl"] == "/broadcasting/token"
    assert config["clientUrl"].endswith("django_broadcasting/broadcasting.js")
    assert config["socketIdHeader"] == "X-Socket-ID"
    assert config["userId"] == str(user.pk)
    identity = decode_token(config["token"])
    assert identity.user_id == str(user.pk)
    assert identity.name == "Ada L"
    assert identity.claims["exp"] - identity.claims["iat"] == 120


def test_anonymous_visitors_get_no_token(rf):
    config = config_of(render(request_for(rf)))
    assert config["token"] is None and config["userId"] is None
    assert config["url"] == "ws://example.test:8000/ws"


def test_https_pages_use_wss(rf):
    assert config_of(render(request_for(rf, secure=True)))["url"] == "wss://example.test:8000/ws"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("wss://realtime.example.com/socket", "wss://realtime.example.com/socket"),
        ("/realtime/ws", "ws://example.test:8000/realtime/ws"),
        ("realtime", "ws://example.test:8000/realtime"),
    ],
)
def test_client_url_setting(rf, settings, setting, expected):
    settings.BROADCASTING = {"CLIENT_URL": setting}
    assert config_of(render(request_for(rf)))["url"] == expected


def test_client_script_imports_the_module_and_sets_the_global(rf):
    html = render(request_for(rf), '{% load broadcasting %}{% broadcasting_client global="bc" %}')
    assert '<script type="module">' in html
    assert 'import { Broadcasting } from "/static/django_broadcasting/broadcasting.js";' in html
    assert 'window["bc"] = client;' in html
    assert "refreshToken" in html


def test_config_only_tag(rf):
    html = render(request_for(rf), "{% load broadcasting %}{% broadcasting_config %}")
    assert config_of(html)["url"].endswith("/ws")
    assert '<script type="module">' not in html


def test_values_cannot_break_out_of_the_script_element(rf, django_user_model):
    evil = django_user_model.objects.create_user("x", password="pw", first_name="</script><script>alert(1)")
    html = render(request_for(rf, evil))
    assert "</script><script>alert(1)" not in html
    assert decode_token(config_of(html)["token"]).name.startswith("</script>")


def test_without_a_request_the_url_is_relative_and_nobody_gets_a_token(user):
    # A context variable called "user" (a profile page's) must never get a token minted.
    html = Template("{% load broadcasting %}{% broadcasting_client %}").render(Context({"user": user}))
    config = config_of(html)
    assert config["url"] == "/ws" and config["token"] is None
    assert 'config.url.startsWith("/")' in html  # resolved against the page's host in the browser


@pytest.mark.parametrize(
    "source", ['{% broadcasting_client global="no-way" %}', "{% broadcasting_client foo=1 %}"]
)
def test_bad_options(rf, source):
    with pytest.raises(TemplateSyntaxError):
        render(request_for(rf), "{% load broadcasting %}" + source)


# -- the refresh endpoint ---------------------------------------------------------------------
def test_token_endpoint_refuses_anonymous(client):
    response = client.get("/broadcasting/token")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("method", ["get", "post"])
def test_token_endpoint_mints_for_the_session_user(client, user, settings, method):
    settings.BROADCASTING = {"CLIENT_TOKEN_TTL": 60}
    client.force_login(user)
    response = getattr(client, method)("/broadcasting/token")
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 60
    assert decode_token(body["token"]).user_id == str(user.pk)
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_token_endpoint_methods(client, user):
    client.force_login(user)
    assert client.put("/broadcasting/token").status_code == 405
