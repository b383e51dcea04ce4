"""S5's publisher: a plain sync process publishing as fast as it can, one call per event.

    python -m bench.s5_publisher project    # broadcast_to_channel() through the configured driver
    python -m bench.s5_publisher channels   # plain Channels: async_to_sync(layer.group_send)
    python -m bench.s5_publisher bare       # the limit: a bare redis-py PUBLISH loop

Prints ``ready`` once set up, then reads commands on stdin:

``run <seq0> <max> <seconds> <channels>``
    publish events ``seq0, seq0 + 1, ...`` (at most ``max``, for at most ``seconds``; 0 = no
    time limit), event ``seq`` to channel ``s5.<seq % channels>``, its data
    ``{"seq", "t", "pad"}`` with ``t`` the time of the call; answer ``done <count> <seconds>``.

The bench reads this process's CPU time from /proc around a ``run``, so set-up (imports,
``django.setup()``, the first connection) is outside the measurement. ``project`` and
``channels`` take their configuration from the environment (``DJANGO_SETTINGS_MODULE``, the
``BROADCAST_*`` variables); ``bare`` connects to ``redis://127.0.0.1:$BENCH_REDIS_PORT``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

PAD = "x" * 56  # as bench.targets.PAD: with seq and t the data is ~100 bytes


def project_publisher() -> Callable[[str, int], None]:
    import django

    django.setup()
    from django_broadcasting.broadcasting import broadcast_to_channel

    def publish(channel: str, seq: int) -> None:
        broadcast_to_channel(channel, "tick", {"seq": seq, "t": time.time(), "pad": PAD})

    return publish


def channels_publisher() -> Callable[[str, int], None]:
    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    group_send = async_to_sync(get_channel_layer().group_send)

    def publish(channel: str, seq: int) -> None:
        text = f'{{"seq":{seq},"t":{time.time():.6f},"pad":"{PAD}"}}'
        group_send(channel, {"type": "bench.message", "text": text})

    return publish


def bare_publisher() -> Callable[[str, int], None]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=int(os.environ["BENCH_REDIS_PORT"]))
    client.ping()

    def publish(channel: str, seq: int) -> None:
        # Nobody subscribes to these names: the publisher's cost of a PUBLISH is the same.
        text = f'{{"seq":{seq},"t":{time.time():.6f},"pad":"{PAD}"}}'
        client.publish("bench-bare." + channel, text)

    return publish


PUBLISHERS = {"project": project_publisher, "channels": channels_publisher, "bare": bare_publisher}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in PUBLISHERS:
        sys.exit(f"usage: python -m bench.s5_publisher {{{','.join(PUBLISHERS)}}}")
    publish = PUBLISHERS[sys.argv[1]]()
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command != "run":
            sys.exit(f"unknown command {command!r}")
        seq0, most, seconds, channels = int(args[0]), int(args[1]), float(args[2]), int(args[3])
        names = [f"s5.{i}" for i in range(channels)]
        started = time.monotonic()
        deadline = started + seconds if seconds > 0 else float("inf")
        count = 0
        while count < most and time.monotonic() < deadline:
            seq = seq0 + count
            publish(names[seq % channels], seq)
            count += 1
        print(f"done {count} {time.monotonic() - started:.6f}", flush=True)


if __name__ == "__main__":
    main()
