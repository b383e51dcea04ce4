"""A publisher in its own process (like a WSGI worker or a task): ``python -m tests.integration.redis_publisher
CHANNEL COUNT INTERVAL EVENT``. Publishes ``{"n": i}`` through the sync driver API and prints one JSON line per
message: ``{"n": i, "id": "<history id>"}`` or ``{"n": i, "error": "..."}`` when the transport refused it."""

from __future__ import annotations

import json
import sys
import time

import django


def main() -> None:
    channel, count, interval, event = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    django.setup()
    from django_broadcasting.drivers import get_driver
    from django_broadcasting.exceptions import TransportError
    from django_broadcasting.messages import Message

    driver = get_driver()
    for n in range(count):
        messages = Message.for_channels([channel], event, {"n": n})
        try:
            ids = driver.publish(messages).ids
            print(json.dumps({"n": n, "id": ids[0] if ids else None}), flush=True)
        except TransportError as exc:
            print(json.dumps({"n": n, "error": str(exc)}), flush=True)
        if interval:
            time.sleep(interval)


if __name__ == "__main__":
    main()
