"""The Origin policy against the handshake's own Host: same origin, listed, no Origin, refused.

In-process (a scope built here, ``override_settings``); the same rules on real daphne and
uvicorn sockets are in ``tests/integration/test_origin_policy.py``.
"""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_broadcasting.auth.middleware import (
    ALLOWED_HOSTS_FALLBACK,
    CSRF_TRUSTED,
    LISTED,
    NO_ORIGIN,
    ORIGIN_FORBIDDEN_CODE,
    REFUSED,
    SAME_ORIGIN,
    BroadcastAuthMiddleware,
    check_origin,
)
from tests.unit.test_auth_middleware import HS, EchoApp, connect

OTHER_FRONT_END = {"CORS_ALLOWED_ORIGINS": ["https://app.example.com"]}


def scope(host: str | None = "127.0.0.1:8000", scheme: str = "ws", **headers: str) -> dict:
    """A WebSocket scope sent to ``host``; keyword headers use underscores for dashes."""
    pairs = [] if host is None else [(b"host", host.encode())]
    pairs += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "websocket", "scheme": scheme, "path": "/ws", "headers": pairs}


@override_settings(BROADCASTING=OTHER_FRONT_END, ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"])
@pytest.mark.parametrize(
    ("origin", "request_scope", "rule"),
    [
        # the site's own pages: scheme, host and port of the Host the socket was opened on
        ("http://127.0.0.1:8000", scope(), SAME_ORIGIN),
        ("HTTP://127.0.0.1:8000", scope(), SAME_ORIGIN),
        ("http://localhost:8000", scope("localhost:8000"), SAME_ORIGIN),
        ("http://[::1]:8000", scope("[::1]:8000"), SAME_ORIGIN),
        ("http://localhost", scope("localhost"), SAME_ORIGIN),  # default port on both sides
        ("http://localhost", scope("localhost:80"), SAME_ORIGIN),
        ("http://localhost:80", scope("localhost"), SAME_ORIGIN),
        ("https://localhost", scope("localhost", scheme="wss"), SAME_ORIGIN),
        ("https://localhost", scope("localhost:443", scheme="wss"), SAME_ORIGIN),
        ("https://app.example.com", scope(), LISTED),
        # look-alikes and near misses
        ("http://127.0.0.1.evil.example", scope(), REFUSED),
        ("http://127.0.0.1:8000.evil.example", scope(), REFUSED),
        ("http://127.0.0.1:8000@evil.example", scope(), REFUSED),
        ("http://evil.example@127.0.0.1:8000", scope(), REFUSED),
        ("http://127.0.0.1:8000/", scope(), REFUSED),  # not an origin: browsers send no path
        ("http://127.0.0.1:8001", scope(), REFUSED),
        ("http://127.0.0.1", scope(), REFUSED),
        ("https://127.0.0.1:8000", scope(), REFUSED),
        ("ws://127.0.0.1:8000", scope(), REFUSED),
        ("http://localhost", scope("localhost", scheme="wss"), REFUSED),  # https page only
        ("https://localhost", scope("localhost"), REFUSED),
        ("null", scope(), REFUSED),
        ("garbage", scope(), REFUSED),
        ("http://127.0.0.1:8000", scope(None), REFUSED),  # no Host to compare with
    ],
)
def test_same_origin_listed_and_refused(origin, request_scope, rule):
    result = check_origin(origin, request_scope)
    assert (result.rule, result.allowed) == (rule, rule != REFUSED)


@override_settings(BROADCASTING=OTHER_FRONT_END, ALLOWED_HOSTS=["example.com"], DEBUG=False)
def test_a_host_outside_allowed_hosts_grants_no_same_origin():
    # A non-browser client controls both headers: naming a Host Django would refuse
    # (a DNS-rebinding name, say) must not make its Origin "the site's own".
    assert check_origin("http://evil.example", scope("evil.example")).rule == REFUSED
    assert check_origin("http://127.0.0.1:8000", scope("127.0.0.1:8000")).rule == REFUSED
    assert check_origin("https://example.com", scope("example.com", scheme="wss")).rule == SAME_ORIGIN
    # Two Host headers are one invalid host to Django ("a,b"), so no same origin either.
    two_hosts = scope("example.com", scheme="wss")
    two_hosts["headers"].append((b"host", b"example.com"))
    assert check_origin("https://example.com", two_hosts).rule == REFUSED


@override_settings(BROADCASTING=OTHER_FRONT_END, ALLOWED_HOSTS=[], DEBUG=True)
def test_debug_with_empty_allowed_hosts_trusts_the_hosts_runserver_serves():
    assert check_origin("http://localhost:8000", scope("localhost:8000")).rule == SAME_ORIGIN
    assert check_origin("http://app.localhost:8000", scope("app.localhost:8000")).rule == SAME_ORIGIN
    assert check_origin("http://10.0.0.5:8000", scope("10.0.0.5:8000")).rule == REFUSED


@override_settings(BROADCASTING=OTHER_FRONT_END, ALLOWED_HOSTS=["*"])
def test_allowed_hosts_star_trusts_any_host_as_django_does():
    # Django serves every Host then, so every Host is "the site's own": still only the origin of
    # the Host the browser connected to, never a foreign page's.
    assert check_origin("http://anything.test:9", scope("anything.test:9")).rule == SAME_ORIGIN
    assert check_origin("http://evil.example", scope("127.0.0.1:8000")).rule == REFUSED


# -- behind a proxy ---------------------------------------------------------------------------------
PROXIED = scope(
    "127.0.0.1:8000", x_forwarded_host="www.example.com", x_forwarded_proto="https", x_forwarded_port="443"
)


@override_settings(BROADCASTING=OTHER_FRONT_END, ALLOWED_HOSTS=["www.example.com", "127.0.0.1"])
def test_forwarded_headers_are_ignored_unless_django_trusts_them():
    assert check_origin("https://www.example.com", PROXIED).rule == REFUSED
    assert check_origin("http://127.0.0.1:8000", PROXIED).rule == SAME_ORIGIN


@override_settings(
    BROADCASTING=OTHER_FRONT_END,
    ALLOWED_HOSTS=["www.example.com", "127.0.0.1"],
    USE_X_FORWARDED_HOST=True,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_trusted_forwarded_host_and_scheme_make_the_public_origin_the_own_one():
    assert check_origin("https://www.example.com", PROXIED).rule == SAME_ORIGIN
    assert check_origin("http://www.example.com", PROXIED).rule == REFUSED
    assert check_origin("http://127.0.0.1:8000", PROXIED).rule == REFUSED
    # The proxy said "http": the page is http even if the proxy reached us over TLS.
    plain = scope(
        "127.0.0.1:8000", scheme="wss", x_forwarded_host="www.example.com", x_forwarded_proto="http"
    )
    assert check_origin("http://www.example.com", plain).rule == SAME_ORIGIN
    # Without the header, the connection's own scheme counts (wss -> https).
    direct = scope("www.example.com", scheme="wss")
    assert check_origin("https://www.example.com", direct).rule == SAME_ORIGIN
    # First value of a list, as Django reads it; an underscore spelling is not the header.
    listed = scope("127.0.0.1:8000", x_forwarded_host="www.example.com", x_forwarded_proto="https, http")
    assert check_origin("https://www.example.com", listed).rule == SAME_ORIGIN
    underscore = scope("www.example.com")
    underscore["headers"].append((b"x_forwarded_proto", b"https"))
    assert check_origin("https://www.example.com", underscore).rule == REFUSED
    # A forwarded host outside ALLOWED_HOSTS is not trusted either.
    spoofed = scope("127.0.0.1:8000", x_forwarded_host="evil.example", x_forwarded_proto="https")
    assert check_origin("https://evil.example", spoofed).rule == REFUSED


@override_settings(BROADCASTING=OTHER_FRONT_END, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO",))
def test_malformed_secure_proxy_ssl_header_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="SECURE_PROXY_SSL_HEADER"):
        check_origin("https://www.example.com", scope())


# -- CSRF_TRUSTED_ORIGINS -------------------------------------------------------------------------
@override_settings(
    BROADCASTING=OTHER_FRONT_END,
    ALLOWED_HOSTS=["127.0.0.1"],
    CSRF_TRUSTED_ORIGINS=["https://admin.example.org", "https://*.example.io", "http://dev.example.org:8080"],
)
@pytest.mark.parametrize(
    ("origin", "rule"),
    [
        ("https://admin.example.org", CSRF_TRUSTED),
        ("https://admin.example.org:443", CSRF_TRUSTED),
        ("http://admin.example.org", REFUSED),
        ("https://example.io", CSRF_TRUSTED),  # Django's "*." covers the domain itself too
        ("https://a.b.example.io", CSRF_TRUSTED),
        ("https://evilexample.io", REFUSED),
        ("https://example.io.evil.example", REFUSED),
        ("http://a.example.io", REFUSED),
        ("http://dev.example.org:8080", CSRF_TRUSTED),
        ("http://dev.example.org", REFUSED),
    ],
)
def test_csrf_trusted_origins_count(origin, rule):
    assert check_origin(origin, scope()).rule == rule


# -- no Origin, empty list --------------------------------------------------------------------------
@override_settings(BROADCASTING=OTHER_FRONT_END)
def test_no_origin_is_allowed_unless_required():
    assert check_origin(None, scope()).rule == NO_ORIGIN
    with override_settings(BROADCASTING={**OTHER_FRONT_END, "REQUIRE_ORIGIN": True}):
        result = check_origin(None, scope())
        assert result.rule == REFUSED and "REQUIRE_ORIGIN" in result.describe()


@override_settings(BROADCASTING={"CORS_ALLOWED_ORIGINS": []}, ALLOWED_HOSTS=["example.com"], DEBUG=False)
def test_empty_list_keeps_the_allowed_hosts_fallback_after_same_origin():
    assert check_origin("http://127.0.0.1:8000", scope()).rule == REFUSED
    assert check_origin("https://example.com", scope("example.com", scheme="wss")).rule == SAME_ORIGIN
    assert check_origin("http://example.com:5173", scope("example.com", scheme="wss")).rule == (
        ALLOWED_HOSTS_FALLBACK
    )
    refused = check_origin("https://evil.example", scope("example.com", scheme="wss"))
    assert refused.rule == REFUSED and "hosts in ALLOWED_HOSTS pass too" in refused.describe()


# -- the log line -----------------------------------------------------------------------------------
@override_settings(BROADCASTING={**HS, **OTHER_FRONT_END}, ALLOWED_HOSTS=["127.0.0.1"])
async def test_refusal_is_logged_at_warning_with_origin_host_and_setting(caplog):
    app = EchoApp()
    caplog.set_level(logging.INFO, logger="django_broadcasting.auth")
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1.evil.example")]
    connected, code, _ = await connect(BroadcastAuthMiddleware(app), headers=headers)
    assert not connected and code == ORIGIN_FORBIDDEN_CODE and app.calls == 0
    [record] = [r for r in caplog.records if r.name == "django_broadcasting.auth"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "'http://127.0.0.1.evil.example'" in message and "Host '127.0.0.1:8000'" in message
    assert "'http://127.0.0.1:8000'" in message and "add it to CORS_ALLOWED_ORIGINS" in message

    caplog.clear()
    headers = [(b"host", b"10.1.2.3:8000"), (b"origin", b"http://10.1.2.3:8000")]
    connected, _, _ = await connect(BroadcastAuthMiddleware(app), headers=headers)
    assert not connected
    [record] = [r for r in caplog.records if r.name == "django_broadcasting.auth"]
    assert "Host '10.1.2.3:8000' is not in ALLOWED_HOSTS" in record.getMessage()

    caplog.clear()
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]
    connected, _, _ = await connect(BroadcastAuthMiddleware(app), headers=headers)
    assert connected and not caplog.records


@override_settings(BROADCASTING=OTHER_FRONT_END)
def test_log_line_cuts_long_values():
    result = check_origin("http://" + "a" * 5000 + ".example", scope())
    assert result.rule == REFUSED and len(result.describe()) < 600
