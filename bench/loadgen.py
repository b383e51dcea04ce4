"""The load generator: one process holding thousands of WebSocket clients on one asyncio loop.

The handshake is done by the ``websockets`` package's sans-I/O client (``ClientProtocol``), then a
minimal frame reader takes over: a benchmark client must cost far less per message than the server
it measures, and ``websockets``' full connection object costs about as much per frame as the
servers under test. Frames are parsed in ``data_received`` without a task, a queue or a JSON
decode: the publish time is read from the payload with one regex.

A worker is driven by the bench driver over a ``multiprocessing`` pipe with small command tuples
(see ``Worker.handle``); it answers each with a tuple, and reports ``("done", seq)`` on its own when
every counted client of the process has received broadcast ``seq``, so the driver can pace
broadcasts by their completion.

A worker is also an HTTP client (S5): a few keep-alive HTTP/1.1 connections, each sending a
request and waiting for its answer before the next (a closed loop), with Pusher HTTP API requests
built and signed by the PyPI ``pusher`` SDK's own request builder. Like the WebSocket client it is
minimal (no client library on the hot path), so it costs less per request than the servers it
measures.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import threading
import time
import zlib
from array import array
from typing import Any
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.http11 import Response
from websockets.uri import parse_uri

# Payloads carry {"seq": <int>, "t": <float publish time>, ...}: seq and t come first.
STAMP = re.compile(rb'"seq":(\d+),"t":([0-9.]+)')
_now = time.time


def raise_nofile() -> None:
    """Raise this process's open-file limit to its hard limit (each client is one socket)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def mask_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (FIN set, masked with a zero key: valid per RFC 6455 and free to apply)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


class Client(asyncio.Protocol):
    """One WebSocket client connection."""

    __slots__ = (
        "worker",
        "uri",
        "proto",
        "transport",
        "buf",
        "open",
        "ready",
        "counted",
        "marker",
        "inflate",
        "ready_fut",
        "closed_fut",
        "on_ready",
        "first",
    )

    def __init__(self, worker: Worker, url: str, marker: bytes, counted: bool, compress: bool) -> None:
        self.worker = worker
        self.uri = parse_uri(url)
        extensions = [ClientPerMessageDeflateFactory()] if compress else None
        self.proto: ClientProtocol | None = ClientProtocol(self.uri, extensions=extensions)
        self.transport: Any = None
        self.buf = b""
        self.open = False
        self.ready = False
        self.counted = counted
        self.marker = marker
        self.inflate: Any = None
        loop = asyncio.get_running_loop()
        self.ready_fut: asyncio.Future = loop.create_future()
        self.closed_fut: asyncio.Future = loop.create_future()
        self.on_ready: Any = None
        self.first: bytes | None = None  # a text frame sent as soon as the handshake completes

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        proto = self.proto
        proto.send_request(proto.connect())
        transport.write(b"".join(proto.data_to_send()))

    def data_received(self, data: bytes) -> None:
        if self.proto is not None:
            self._handshake(data)
            return
        buf = self.buf + data if self.buf else data
        pos, end = 0, len(buf)
        worker = self.worker
        while end - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if end - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            if end - start < n:
                break
            payload = buf[start : start + n]
            pos = start + n
            opcode = b0 & 0x0F
            if b0 & 0x40 and self.inflate is not None:  # RSV1: permessage-deflate
                payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
            if opcode == 1 or opcode == 2:
                if self.counted:
                    # Every subscriber gets the same bytes for a broadcast: parse them once.
                    if payload == worker.last_payload:
                        worker.record(worker.last_seq, worker.last_sent)
                        continue
                    match = STAMP.search(payload)
                    if match is not None:
                        worker.last_payload = payload
                        worker.last_seq, worker.last_sent = int(match[1]), float(match[2])
                        worker.record(worker.last_seq, worker.last_sent)
                        continue
                if not self.ready and self.marker in payload:
                    self._set_ready()
            elif opcode == 9:  # ping -> pong
                self.transport.write(mask_frame(0xA, payload))
            elif opcode == 8:
                self.transport.write(mask_frame(0x8, payload[:2]))
                self.transport.close()
                break
        self.buf = buf[pos:] if pos < end else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.ready_fut.done():
            self.ready_fut.set_exception(ConnectionError(f"closed before ready: {exc}"))
        if not self.closed_fut.done():
            self.closed_fut.set_result(None)
        self.worker.forget(self)

    # -- helpers ---------------------------------------------------------------------------
    def _handshake(self, data: bytes) -> None:
        # The response head goes to websockets' sans-I/O client (it checks the accept key and
        # negotiates extensions); anything after it is frames, read by data_received.
        self.buf += data
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head, rest = self.buf[: head_end + 4], self.buf[head_end + 4 :]
        self.buf = b""
        proto = self.proto
        proto.receive_data(head)
        response = next((e for e in proto.events_received() if isinstance(e, Response)), None)
        if response is None or response.status_code != 101 or proto.handshake_exc is not None:
            self.transport.close()
            if not self.ready_fut.done():
                code = response.status_code if response is not None else "?"
                self.ready_fut.set_exception(ConnectionError(f"handshake refused: {code}"))
            return
        self.open = True
        if self.first is not None:
            self.transport.write(mask_frame(1, self.first))
        for ext in proto.extensions:
            if getattr(ext, "name", "") == "permessage-deflate":
                self.inflate = zlib.decompressobj(-15)
        self.proto = None
        if not self.marker:
            self._set_ready()
        if rest:
            self.data_received(rest)

    def _set_ready(self) -> None:
        self.ready = True
        if not self.ready_fut.done():
            self.ready_fut.set_result(None)

    def send_text(self, text: str) -> None:
        self.transport.write(mask_frame(1, text.encode()))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(mask_frame(8, (1000).to_bytes(2, "big")))
            self.transport.close()


def parse_response(buf: bytes) -> tuple[int, bytes, int] | None:
    """``(status, body, bytes used)`` of the first complete HTTP/1.1 response in ``buf``, else None.

    Bodies are delimited by ``Content-Length`` or chunked transfer encoding (what ASGI servers use
    when the application gives no length).
    """
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = buf[:head_end].lower()
    status = int(buf[9:12])
    start = head_end + 4
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        if len(buf) < start + length:
            return None
        return status, buf[start : start + length], start + length
    if b"\r\ntransfer-encoding: chunked" not in head:
        return status, b"", start  # no body (e.g. 204)
    body, pos = [], start
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(buf[pos:line_end].split(b";")[0], 16)
        if size == 0:  # the last chunk, then trailers (none, in practice) and an empty line
            end = buf.find(b"\r\n\r\n", line_end)
            return None if end < 0 else (status, b"".join(body), end + 4)
        if len(buf) < line_end + 2 + size + 2:
            return None
        body.append(buf[line_end + 2 : line_end + 2 + size])
        pos = line_end + 2 + size + 2


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 client connection: one request in flight at a time."""

    __slots__ = ("transport", "buf", "waiter", "lost")

    def __init__(self) -> None:
        self.transport: Any = None
        self.buf = b""
        self.waiter: asyncio.Future | None = None
        self.lost = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        parsed = parse_response(self.buf)
        if parsed is None:
            return
        status, body, used = parsed
        self.buf = self.buf[used:]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection closed: {exc}"))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class Worker:
    """The clients of one load-generator process and their measurements."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.clients: set[Client] = set()
        self.counted = 0
        self.latencies = array("d")
        self.per_seq: dict[int, int] = {}
        self.done_sent: set[int] = set()
        self.received = 0
        self.churned = 0
        self.churn_failed = 0
        self.last_payload = b""
        self.last_seq = 0
        self.last_sent = 0.0

    # -- measurement -----------------------------------------------------------------------
    def record(self, seq: int, sent: float) -> None:
        self.latencies.append(_now() - sent)
        self.received += 1
        count = self.per_seq.get(seq, 0) + 1
        self.per_seq[seq] = count
        if count >= self.counted and seq not in self.done_sent:
            self.done_sent.add(seq)
            self.pipe.send(("done", seq))

    def forget(self, client: Client) -> None:
        if client in self.clients:
            self.clients.discard(client)
            if client.counted and client.ready:
                self.counted -= 1

    # -- connecting --------------------------------------------------------------------------
    async def open_one(
        self, url: str, marker: bytes, counted: bool, compress: bool, timeout: float, first: str | None = None
    ) -> Client:
        loop = asyncio.get_running_loop()
        parts = urlsplit(url)
        client = Client(self, url, marker, counted, compress)
        if first is not None:
            client.first = first.encode()
        await asyncio.wait_for(loop.create_connection(lambda: client, parts.hostname, parts.port), timeout)
        self.clients.add(client)
        await asyncio.wait_for(client.ready_fut, timeout)
        if counted:
            self.counted += 1
        return client

    async def connect(self, urls: list[str], marker: bytes, concurrency: int, compress: bool) -> tuple:
        started = time.monotonic()
        sem = asyncio.Semaphore(concurrency)
        failures: list[str] = []

        async def one(url: str | tuple[str, str]) -> None:
            # A (url, text) pair sends ``text`` right after the handshake (a subscribe with last_id).
            url, first = url if isinstance(url, tuple) else (url, None)
            async with sem:
                try:
                    await self.open_one(url, marker, True, compress, 60.0, first)
                except Exception as exc:  # counted and reported, the run goes on
                    failures.append(repr(exc))

        await asyncio.gather(*(one(u) for u in urls))
        return (
            "connected",
            len(urls) - len(failures),
            len(failures),
            time.monotonic() - started,
            failures[:3],
        )

    async def churn(self, urls: list[str], marker: bytes, rate: float, duration: float, hold: float) -> tuple:
        """Open a client every 1/rate s, keep it ``hold`` s after it is ready, close it."""
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task] = set()

        async def life(url: str) -> None:
            try:
                client = await self.open_one(url, marker, False, False, 10.0)
                await asyncio.sleep(hold)
                client.close()
                await asyncio.wait_for(client.closed_fut, 5.0)
                self.churned += 1
            except Exception:
                self.churn_failed += 1

        start = loop.time()
        i = 0
        while loop.time() - start < duration:
            task = loop.create_task(life(urls[i % len(urls)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            next_at = start + i / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        return ("churned", self.churned, self.churn_failed, i)

    async def http_load(
        self,
        port: int,
        kind: str,
        app: tuple[str, str, str],
        channels: list[str],
        concurrency: int,
        duration: float,
        seq0: int,
        pad: str,
    ) -> tuple:
        """POST Pusher API requests for ``duration`` s over ``concurrency`` keep-alive connections.

        ``kind`` is ``events`` (one event per request, ``POST /apps/{id}/events``) or ``batch``
        (10 events, ``POST /apps/{id}/batch_events``). Event ``seq`` goes to channel
        ``channels[seq % len(channels)]`` with ``{"seq", "t", "pad"}`` as its data, ``t`` the time
        the request is built. Answers ``("http", requests, events, errors, seconds, first error)``;
        only events of requests answered 200 count.
        """
        from pusher.pusher_client import PusherClient

        loop = asyncio.get_running_loop()
        client = PusherClient(
            app_id=app[0], key=app[1], secret=app[2], host="127.0.0.1", port=port, ssl=False
        )
        per_request = 10 if kind == "batch" else 1
        n = len(channels)
        state = {"seq": seq0, "requests": 0, "events": 0, "errors": 0, "first_error": ""}

        def build() -> bytes:
            seq = state["seq"]
            state["seq"] = seq + per_request
            now = _now()
            if per_request == 1:
                data = f'{{"seq":{seq},"t":{now:.6f},"pad":"{pad}"}}'
                req = client.trigger.make_request([channels[seq % n]], "tick", data)
            else:
                batch = [
                    {
                        "channel": channels[(seq + i) % n],
                        "name": "tick",
                        "data": f'{{"seq":{seq + i},"t":{now:.6f},"pad":"{pad}"}}',
                    }
                    for i in range(per_request)
                ]
                req = client.trigger_batch.make_request(batch)
            head = (
                f"POST {req.signed_path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(req.body)}\r\n\r\n"
            )
            return head.encode() + req.body

        async def one(deadline: float) -> None:
            _, conn = await loop.create_connection(HttpConnection, "127.0.0.1", port)
            try:
                while loop.time() < deadline:
                    try:
                        status, body = await conn.request(build())
                    except ConnectionError as exc:
                        state["errors"] += 1
                        state["first_error"] = state["first_error"] or repr(exc)
                        return
                    state["requests"] += 1
                    if status == 200:
                        state["events"] += per_request
                    else:
                        state["errors"] += 1
                        state["first_error"] = state["first_error"] or f"{status}: {body[:200]!r}"
            finally:
                conn.transport.close()

        started = loop.time()
        try:
            # One deadline for the whole run, not a timer per request (the client must stay cheap).
            await asyncio.wait_for(
                asyncio.gather(*(one(started + duration) for _ in range(concurrency))), duration + 60.0
            )
        except TimeoutError:
            state["errors"] += 1
            state["first_error"] = state["first_error"] or "a request got no answer within 60 s"
        elapsed = loop.time() - started
        return ("http", state["requests"], state["events"], state["errors"], elapsed, state["first_error"])

    async def close_all(self) -> tuple:
        clients = list(self.clients)
        for client in clients:
            client.close()
        if clients:
            await asyncio.wait([c.closed_fut for c in clients], timeout=15)
        self.counted = 0
        return ("closed", len(clients))

    # -- command loop ----------------------------------------------------------------------
    async def handle(self, cmd: tuple) -> tuple:
        kind = cmd[0]
        if kind == "connect":
            _, urls, marker, concurrency, compress = cmd
            return await self.connect(urls, marker, concurrency, compress)
        if kind == "churn":
            _, urls, marker, rate, duration, hold = cmd
            return await self.churn(urls, marker, rate, duration, hold)
        if kind == "send":  # a text frame from every counted client (subscribe actions)
            for client in list(self.clients):
                client.send_text(cmd[1])
            return ("sent",)
        if kind == "reset":
            self.latencies = array("d")
            self.per_seq.clear()
            self.done_sent.clear()
            self.received = 0
            return ("reset", self.counted)
        if kind == "http":
            return await self.http_load(*cmd[1:])
        if kind == "count":  # frames received, distinct broadcasts among them
            return ("count", self.received, len(self.per_seq))
        if kind == "stats":
            return ("stats", self.received, self.latencies.tobytes(), dict(self.per_seq), self.counted)
        if kind == "close":
            return await self.close_all()
        if kind == "ping":
            return ("pong", os.getpid(), self.counted)
        raise ValueError(f"unknown command {kind!r}")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()

        def read_commands() -> None:
            # A blocking reader thread: add_reader would make the pipe non-blocking, and
            # multiprocessing's recv/send of a large command cannot cope with that.
            while True:
                try:
                    cmd = self.pipe.recv()
                except (EOFError, OSError):
                    cmd = ("quit",)
                loop.call_soon_threadsafe(inbox.put_nowait, cmd)
                if cmd[0] == "quit":
                    return

        threading.Thread(target=read_commands, daemon=True).start()
        while True:
            cmd = await inbox.get()
            if cmd[0] == "quit":
                await self.close_all()
                return
            try:
                reply = await self.handle(cmd)
            except Exception as exc:  # reported to the driver, which fails the cell
                reply = ("error", repr(exc))
            self.pipe.send(reply)


def worker_main(pipe: Any) -> None:
    """Entry point of a load-generator process."""
    raise_nofile()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio works, a little slower
        pass
    asyncio.run(Worker(pipe).run())
