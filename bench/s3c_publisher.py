"""S3c's publisher cost: CPU per sync ``broadcast_to_channel()`` on the Redis the environment names.

``python -m bench.s3c_publisher COUNT CHANNELS`` publishes COUNT broadcasts round robin over
CHANNELS channels (after a warm-up) and prints ``<CPU seconds per call> <wall seconds per call>``.
"""

from __future__ import annotations

import sys
import time

import django


def main() -> None:
    count, channels = int(sys.argv[1]), int(sys.argv[2])
    django.setup()
    from django_broadcasting.broadcasting import broadcast_to_channel

    from .targets import PAD

    names = [f"bench.{i}" for i in range(channels)]
    for name in names:  # warm-up: connections, slot map, scripts
        broadcast_to_channel(name, "tick", {"seq": -1, "t": time.time(), "pad": PAD})
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for seq in range(count):
        broadcast_to_channel(names[seq % channels], "tick", {"seq": seq, "t": time.time(), "pad": PAD})
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"{cpu / count:.9f} {wall / count:.9f}", flush=True)


if __name__ == "__main__":
    main()
