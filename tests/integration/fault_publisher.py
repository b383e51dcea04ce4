"""A long-lived publisher process for the fault tests: ``python -m tests.integration.fault_publisher CHANNEL``.

It stands for an ASGI app and a WSGI worker in one process that is never restarted while Redis
fails: one lasting event loop publishes with ``abroadcast_to_channel`` (the pooled asyncio
client), one lasting worker thread with ``broadcast_to_channel`` (the per-thread blocking
connection). It prints ``ready``, then reads commands from stdin, one per line, ``sync N`` or
``async N`` (optionally followed by another channel), and answers each with one JSON line: ``{"mode", "n", "ok", "elapsed"}`` plus
``"error"`` (the ``TransportError`` text) when the publish was refused.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import django


async def main(channel: str) -> None:
    django.setup()
    from django_broadcasting import abroadcast_to_channel, broadcast_to_channel
    from django_broadcasting.exceptions import TransportError

    worker = ThreadPoolExecutor(max_workers=1)  # the same thread, so the same sync connection
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        mode, n, *other = line.split()
        target = other[0] if other else channel
        started = time.monotonic()
        result: dict = {"mode": mode, "n": int(n)}
        try:
            if mode == "sync":
                await loop.run_in_executor(worker, broadcast_to_channel, target, "tick", {"n": int(n)})
            else:
                await abroadcast_to_channel(target, "tick", {"n": int(n)})
            result["ok"] = True
        except TransportError as exc:
            result.update(ok=False, error=str(exc), type=type(exc).__name__)
        result["elapsed"] = round(time.monotonic() - started, 3)
        print(json.dumps(result), flush=True)
    worker.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
