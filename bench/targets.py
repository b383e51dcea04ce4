"""The servers compared side by side, each with its subscribe URL and its publisher.

A publisher stamps the publish time inside the ~100-byte payload (``{"seq", "t", "pad"}``) right
before it hands the message over, so latency is publish -> receipt, measured by the load
generator against the same clock.

- this project: the signed HTTP trigger (``POST /api/broadcast/events``), the path a process
  without the server's memory uses with the in-memory default; one keep-alive connection.
- plain Channels: ``POST /publish``, a view doing ``group_send``.
- raw websockets: a publisher socket on ``/pub`` whose frames the server ``broadcast()``s.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from . import procs

PAD = "x" * 56  # with seq and t the payload is ~100 bytes


def payload(seq: int) -> str:
    return f'{{"seq":{seq},"t":{time.time():.6f},"pad":"{PAD}"}}'


class Target:
    """One server under test."""

    name = "?"
    label = "?"
    marker = b"ready"
    product = False

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.proc: procs.Proc | None = None
        self.redis_port: int | None = options.get("redis_port")

    def start(self) -> Target:
        self.proc = self.make_proc().start()
        procs.pin(self.proc.pid, procs.server_cpus())
        return self

    def make_proc(self) -> procs.Proc:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def port(self) -> int:
        assert self.proc is not None and self.proc.port is not None
        return self.proc.port

    def url(self, channel: str = "bench") -> str:
        raise NotImplementedError

    def publish(self, seq: int, channel: str = "bench") -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


class _HTTPPublisher(Target):
    _http: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        for attempt in (1, 2):
            if self._http is None:
                self._http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self._http.request("POST", path, body, headers)
                response = self._http.getresponse()
                data = response.read()
                if response.status >= 300:
                    raise RuntimeError(f"{self.label}: publish answered {response.status}: {data[:200]!r}")
                return
            except (http.client.HTTPException, OSError):
                self._http.close()
                self._http = None
                if attempt == 2:
                    raise

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        super().stop()


class Project(_HTTPPublisher):
    """This project's example site; ``server`` is ``uvicorn`` or ``daphne``.

    Under uvicorn the WebSocket protocol is this project's front (``ws`` picks another, e.g.
    ``websockets-sansio``); with ``deflate`` it is ``websockets-sansio``, since the front
    negotiates no extension.
    """

    product = True
    marker = b'"event":"subscribed"'

    def __init__(self, server: str = "uvicorn", **options: Any) -> None:
        super().__init__(**options)
        self.server = server
        self.name = f"project-{server}"
        deflate = options.get("deflate", False)
        self.ws = options.get("ws") or ("websockets-sansio" if deflate else procs.FRONT_WS)
        self.label = f"django-broadcasting on {server}"
        if server == "uvicorn" and self.ws != procs.FRONT_WS:
            self.label += f", {self.ws}"
        self.label += " (deflate)" if deflate else ""

    def make_proc(self) -> procs.Proc:
        return procs.project_server(
            self.server,
            env=self.options.get("env"),
            deflate=self.options.get("deflate", False),
            ws=self.ws,
        )

    def url(self, channel: str = "bench", token: str | None = None) -> str:
        query = f"?auth_token={token}" if token else ""
        return f"ws://127.0.0.1:{self.port}/ws/{channel}{query}"

    def publish(self, seq: int, channel: str = "bench") -> None:
        from django_broadcasting.http.trigger import sign

        body = f'{{"channel":"{channel}","event":"tick","data":{payload(seq)}}}'.encode()
        self.post("/api/broadcast/events", body, {"Content-Type": "application/json", **sign(body)})


class ChannelsPeer(_HTTPPublisher):
    """Plain Channels: a consumer in a group, a view doing ``group_send``."""

    def __init__(self, layer: str = "memory", **options: Any) -> None:
        super().__init__(**options)
        self.layer = layer
        self.name = f"channels-{layer}"
        self.label = (
            "plain Channels group_send ("
            + ("InMemoryChannelLayer" if layer == "memory" else "channels-redis")
            + ")"
        )

    def make_proc(self) -> procs.Proc:
        return procs.channels_peer(self.layer, self.redis_port)

    def url(self, channel: str = "bench") -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def publish(self, seq: int, channel: str = "bench") -> None:
        self.post("/publish", payload(seq).encode(), {"Content-Type": "text/plain"})


class RawWebsockets(Target):
    """A bare ``websockets`` server using ``websockets.broadcast()``."""

    name = "raw-websockets"
    label = "raw websockets.broadcast()"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._pub: Any = None

    def make_proc(self) -> procs.Proc:
        return procs.raw_peer()

    def url(self, channel: str = "bench") -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def publish(self, seq: int, channel: str = "bench") -> None:
        if self._pub is None:
            from websockets.sync.client import connect

            self._pub = connect(f"ws://127.0.0.1:{self.port}/pub", compression=None)
        self._pub.send(payload(seq))

    def stop(self) -> None:
        if self._pub is not None:
            self._pub.close()
            self._pub = None
        super().stop()


def make_token(user_id: str, ttl: int = 3600) -> str:
    """A JWT for the bench servers' secret (presence channels need an authenticated user)."""
    import jwt

    now = int(time.time())
    claims = {"sub": user_id, "aud": "websocket", "iat": now, "exp": now + ttl, "name": user_id}
    return jwt.encode(claims, procs.BENCH_JWT_SECRET, algorithm="HS256")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# -- S5 targets ----------------------------------------------------------------------------------
# Each S5 path's CPU per event is compared with its limit measured in the same run (the row names
# it in ``extra["limit"]``): the ratio is what holds from machine to machine, absolute times on a
# shared 2-core machine are noise. The HTTP targets are held at the first client load (one request
# at a time: every request a wakeup of its own, as the limits were set), the other load is shown.
#: (row, at most this many times its limit's CPU per event, what the target says)
S5_TARGETS = (
    ("api-events", 2.0, "HTTP API, one event per request: server CPU per event <= 2x the bare ASGI request"),
    ("api-batch", 0.5, "HTTP API, batch of 10: server CPU per event <= 0.5x the bare ASGI request"),
    ("redis-publish", 3.0, "redis publisher: CPU per sync `broadcast_to_channel()` <= 3x a bare `PUBLISH`"),
    ("redis-receive", 0.5, "receiving server at fan-out 1: CPU per event <= 0.5x the bare ASGI request"),
)


def _us(cell: Any) -> float | None:
    return cell.server_cpu / cell.broadcasts * 1e6 if cell.broadcasts and cell.server_cpu > 0 else None


def s5_ratio(cells: list[Any], target: str) -> tuple[float, float, float] | None:
    """``(ratio, its CPU us per event, the limit's)`` of S5 row ``target``, if both were measured."""
    rows = {c.target: c for c in cells if c.scenario == "S5"}
    row = rows.get(target)
    limit = rows.get(row.extra.get("limit", "")) if row else None
    ours, theirs = (_us(row) if row else None), (_us(limit) if limit else None)
    if ours is None or theirs is None:
        return None
    return ours / theirs, ours, theirs


def s5_goals(cells: list[Any]) -> list[str]:
    """The S5 targets checked against this run, PASS or FAIL with both sides shown."""
    out = []
    for target, most, text in S5_TARGETS:
        measured = s5_ratio(cells, target)
        if measured is None:
            out.append(f"- {text}: not measured")
            continue
        ratio, ours, theirs = measured
        out.append(
            f"- {text}: {ours:,.0f} µs vs {theirs:,.0f} µs = {ratio:.2f}x {'PASS' if ratio <= most else 'FAIL'}"
        )
    # The receiving path's floor, measured in the same run: what the 0.5x target leaves for the
    # work above the kernel's wakeup, read and WebSocket write. Shown, not a target.
    ours, floor = s5_ratio(cells, "redis-receive"), s5_ratio(cells, "bare-receive")
    if ours is not None and floor is not None:
        out.append(
            f"- for reference, not a target: the receiving server {ours[1]:,.0f} µs per event = "
            f"{ours[1] / floor[1]:.2f}x the bare Redis-to-WebSocket relay ({floor[1]:,.0f} µs, itself "
            f"{floor[0]:.2f}x the bare ASGI request)"
        )
    # This project's paths (each event counted once: the receiving row repeats the publisher's).
    ours = [
        c
        for c in cells
        if c.target in ("api-events", "api-batch", "redis-publish") and c.extra.get("counted")
    ]
    if ours:
        events = sum(c.broadcasts for c in ours)
        lost = sum(c.lost for c in ours)
        failed = sum(c.extra.get("errors", 0) for c in ours)
        out.append(
            f"- every event delivered: {events:,} events, {lost} lost, {failed} requests failed "
            f"{'PASS' if lost == 0 and failed == 0 else 'FAIL'}"
        )
    return out


# -- S6: handshake + subscribe against the raw websockets server ---------------------------------
S6_CPU_RATIO = 1.5  # project CPU per client <= 1.5x raw
S6_IDLE_KIB = 18.0  # RSS per idle connection


def s6_goals(cells: list[Any]) -> list[str]:
    """The S6 targets with both sides: CPU per client and RSS per connection, and the storm's outcome."""
    from .s6 import per_client_us

    rows = [c for c in cells if c.scenario == "S6"]
    out = []
    for n in sorted({c.n for c in rows if c.extra.get("phase") == "connect"}):
        ours = next((c for c in rows if c.target == "project-uvicorn" and c.n == n), None)
        raw = next((c for c in rows if c.target == "raw-websockets" and c.n == n), None)
        if ours is None or raw is None:
            continue
        a, b = per_client_us(ours), per_client_us(raw)
        if a is not None and b is not None:
            r = a / b
            out.append(
                f"- handshake + subscribe CPU per client at N={n:,} <= {S6_CPU_RATIO}x raw: {a:,.0f} µs vs "
                f"{b:,.0f} µs = {r:.2f}x {'PASS' if r <= S6_CPU_RATIO else 'FAIL'} (wall {ours.seconds:.2f} s "
                f"vs {raw.seconds:.2f} s)"
            )
        else:
            out.append(f"- handshake + subscribe CPU per client at N={n:,}: not measured")
        if ours.rss_per_conn_kib is not None and raw.rss_per_conn_kib is not None:
            kib = ours.rss_per_conn_kib
            out.append(
                f"- RSS per idle connection at N={n:,} <= {S6_IDLE_KIB:g} KiB: {kib:.1f} KiB (raw "
                f"{raw.rss_per_conn_kib:.1f} KiB) {'PASS' if kib <= S6_IDLE_KIB else 'FAIL'}"
            )
    for c in rows:
        if c.extra.get("phase") == "storm":
            ok = c.extra.get("ok", 0) == c.n and c.lost == 0
            out.append(
                f"- reconnect storm: {c.extra.get('ok', 0):,} of {c.n:,} resubscribed with recovery, "
                f"{c.broadcasts:,} broadcasts ({c.extra.get('missed', 0)} while down), {c.lost} lost "
                f"{'PASS' if ok else 'FAIL'}"
            )
    return out
