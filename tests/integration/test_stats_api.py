"""``GET /api/broadcast/stats`` and ``GET /metrics`` of a real daphne process.

Access rules (staff session, stats token, trigger signature; 401/403 otherwise), the
document's figures while real WebSockets are connected, and the Prometheus exposition.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from django_broadcasting.http.trigger import apost, sign
from django_broadcasting.messages import Message
from tests.integration.wsclient import connect, expect, make_token, subscribe
from tests.servers import create_user

pytestmark = pytest.mark.integration

STATS = "/api/broadcast/stats"
TOKEN = "stats-token-0123456789"


def login_cookies(server, username: str, password: str, path: str = "/admin/login/") -> httpx.Cookies:
    """Log in through a login form of the server (a real session cookie)."""
    with httpx.Client(base_url=server.base_url) as client:
        page = client.get(path)
        csrf = client.cookies["csrftoken"]
        response = client.post(
            path,
            data={"username": username, "password": password, "csrfmiddlewaretoken": csrf, "next": "/"},
            headers={"Referer": server.url(path)},
        )
        assert page.status_code == 200 and response.status_code == 302, response.text[:500]
        return client.cookies


@pytest.fixture
def server(server_factory):
    return server_factory("daphne", env={"BROADCAST_STATS_TOKEN": TOKEN})


def test_stats_refuses_anonymous_with_401_and_wrong_credentials_with_403(server):
    anonymous = httpx.get(server.url(STATS))
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"
    assert "connections" not in anonymous.text
    assert httpx.get(server.url(STATS), headers={"Authorization": "Bearer wrong"}).status_code == 403
    forged = sign(b"", None)
    forged["X-Broadcast-Signature"] = "sha256=" + "0" * 64
    assert httpx.get(server.url(STATS), headers=forged).status_code == 403
    stale = {**sign(b"", 1_000_000_000)}
    assert httpx.get(server.url(STATS), headers=stale).status_code == 403


def test_stats_accepts_token_and_signature(server):
    by_token = httpx.get(server.url(STATS), headers={"Authorization": f"Bearer {TOKEN}"})
    assert by_token.status_code == 200
    by_signature = httpx.get(server.url(STATS), headers=sign(b""))
    assert by_signature.status_code == 200
    document = by_signature.json()
    assert {
        "node",
        "connections",
        "channels",
        "presence",
        "presence_members",
        "rates",
        "totals",
        "nodes",
    } <= set(document)
    assert document["nodes"][0]["node"] == document["node"]
    assert by_token.headers["Cache-Control"] == "no-store"


def test_stats_session_needs_staff(server, migrated_db_path):
    create_user(migrated_db_path, "stats-staff", "pw-staff-123", is_staff=True)
    create_user(migrated_db_path, "stats-user", "pw-user-123")
    staff = httpx.get(server.url(STATS), cookies=login_cookies(server, "stats-staff", "pw-staff-123"))
    assert staff.status_code == 200 and "channels" in staff.json()
    user = httpx.get(
        server.url(STATS), cookies=login_cookies(server, "stats-user", "pw-user-123", "/accounts/login/")
    )
    assert user.status_code == 403 and "channels" not in user.json()


async def test_stats_counts_connections_channels_presence_and_messages(server):
    headers = sign(b"")
    token = make_token(7, name="Seven")
    async with (
        await connect(server.ws_url("/ws?channel=general")) as a,
        await connect(server.ws_url("/ws?channel=general")) as b,
        await connect(server.ws_url(f"/ws?auth_token={token}")) as c,
    ):
        await expect(a, "subscribed")
        await expect(b, "subscribed")
        await expect(c, "connected")
        joined = await subscribe(c, "presence.chat.1")
        assert joined["event"] == "subscribed", joined
        await apost(
            Message.for_channels(["general"], "hello", {"n": 1}), url=server.url("/api/broadcast/events")
        )
        await expect(a, "hello")
        await expect(b, "hello")
        async with httpx.AsyncClient() as client:
            document = (await client.get(server.url(STATS), headers=headers)).json()
    assert document["connections"] == 3
    assert document["channels"] == {"general": 2, "presence.chat.1": 1}
    assert document["presence_members"] == 1
    assert [m["id"] for m in document["presence"]["presence.chat.1"]] == ["7"]
    totals = document["totals"]
    assert totals["subscriptions"] == 3 and totals["channels"] == 2 and totals["nodes"] == 1
    assert totals["messages_in"] >= 1 and totals["deliveries"] >= 2
    assert totals["connections_total"] == 3
    assert set(document["rates"]) >= {"messages_in", "deliveries", "frames_in"}
    assert document["rates"]["messages_in"] > 0


def _metrics(text: str) -> dict[str, dict]:
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def test_metrics_expose_hub_figures_and_broadcast_duration(server_factory):
    server = server_factory("daphne")
    async with await connect(server.ws_url("/ws?channel=general")) as ws:
        await expect(ws, "subscribed")
        await ws.send('{"action": "subscribe", "channel": ""}')  # an error frame (bad channel name)
        error = await expect(ws, "error")
        await apost(Message.for_channels(["general"], "hello", {}), url=server.url("/api/broadcast/events"))
        await expect(ws, "hello")
        async with httpx.AsyncClient() as client:
            response = await client.get(server.url("/metrics"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    m = _metrics(response.text)
    assert m["broadcast_connections"][()] == 1
    assert m["websocket_connections_total"][()] == 1
    assert m["broadcast_channels"][()] == 1
    assert m["broadcast_subscriptions"][()] == 1
    assert m["broadcast_presence_members"][()] == 0
    assert m["broadcast_messages_in_total"][()] == 1
    assert m["broadcast_messages_out_total"][()] == 1
    assert m["broadcast_frames_in_total"][()] >= 1
    assert m["broadcast_errors_total"][(("code", str(error["data"]["code"])),)] == 1
    assert m["broadcast_duration_seconds_count"][(("source", "trigger"),)] == 1
    assert ("process_resident_memory_bytes" in m) or ("python_info" in m)


def test_metrics_token_requires_bearer(server_factory):
    server = server_factory("daphne", env={"BROADCAST_METRICS_TOKEN": "m-token"})
    assert httpx.get(server.url("/metrics")).status_code == 401
    assert httpx.get(server.url("/metrics"), headers={"Authorization": "Bearer nope"}).status_code == 403
    ok = httpx.get(server.url("/metrics"), headers={"Authorization": "Bearer m-token"})
    assert ok.status_code == 200 and "broadcast_connections" in ok.text
