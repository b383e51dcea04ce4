"""S3's publisher: a third process (neither server) using the public API, one line per broadcast.

Reads ``<seq> <channel>`` lines on stdin, stamps the publish time in the payload, calls
``broadcast_to_channel`` (through whatever driver the environment configures: Redis pub/sub or
the Channels layer) and answers ``ok``.
"""

from __future__ import annotations

import sys
import time

import django


def main() -> None:
    django.setup()
    from django_broadcasting.broadcasting import broadcast_to_channel

    from .targets import PAD

    print("ready", flush=True)
    for line in sys.stdin:
        seq_text, channel = line.split()
        broadcast_to_channel(channel, "tick", {"seq": int(seq_text), "t": time.time(), "pad": PAD})
        print("ok", flush=True)


if __name__ == "__main__":
    main()
