"""The admin's live stats page through Django's test client: who may see it, where it is linked.

The browser test (tests/e2e/test_admin_stats.py) checks the live refresh against a real server.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from django_broadcasting.server.hub import get_hub

pytestmark = pytest.mark.django_db

PAGE = "/admin/django_broadcasting/stats/"
DATA = "/admin/django_broadcasting/stats/data/"


@pytest.fixture
def serving(monkeypatch):
    """This process plays the server (its hub is the one the page reads)."""
    monkeypatch.setattr(get_hub(), "serving", True)


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(user)
    return user


def test_urls_are_named_in_the_admin_namespace():
    assert reverse("admin:django_broadcasting_stats") == PAGE
    assert reverse("admin:django_broadcasting_stats_data") == DATA


@pytest.mark.parametrize("path", [PAGE, DATA])
def test_anonymous_gets_the_admin_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


@pytest.mark.parametrize("path", [PAGE, DATA])
def test_non_staff_gets_the_admin_login_never_the_data(client, path, serving):
    client.force_login(get_user_model().objects.create_user("plain", password="pw"))
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert b"connections" not in response.content


def test_staff_sees_the_page_with_every_section(client, staff, serving):
    response = client.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Broadcasting statistics", 'id="stat-connections"', "Channels", "Presence members", "Nodes",
                 "Broadcasts in", "Deliveries out", DATA):  # fmt: skip
        assert text in html, text


def test_staff_gets_the_stats_document(client, staff, serving):
    response = client.get(DATA)
    assert response.status_code == 200
    document = response.json()
    assert {"connections", "channels", "presence", "rates", "nodes", "totals"} <= set(document)
    assert document["nodes"][0]["node"] == get_hub().node_id


def test_page_is_linked_from_the_admin_index_for_staff(client, staff):
    html = client.get("/admin/").content.decode()
    assert f'href="{PAGE}"' in html and "Live statistics" in html


def test_unreachable_server_is_reported_not_raised(client, staff, monkeypatch, settings):
    monkeypatch.setattr(get_hub(), "serving", False)
    settings.BROADCASTING = {"TRIGGER_URL": "http://127.0.0.1:9/api/broadcast/events", "TRIGGER_TIMEOUT": 1}
    page = client.get(PAGE)
    assert page.status_code == 200 and "Cannot reach the broadcast server" in page.content.decode()
    data = client.get(DATA)
    assert data.status_code == 503 and data.json()["error"]["code"] == "unavailable"


def test_breadcrumbs_use_the_markup_of_the_running_django_admin(client, serving):
    """Django 6.1 styles ``<ol class="breadcrumbs">``, earlier versions ``<div class="breadcrumbs">``."""
    import re

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    tag = re.compile(r'<(ol|div) class="breadcrumbs">')
    django_own = tag.search(client.get("/admin/auth/user/").content.decode())
    ours = tag.search(client.get(PAGE).content.decode())
    assert django_own and ours
    assert ours.group(1) == django_own.group(1)
