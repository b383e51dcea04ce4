"""This project's example site on uvicorn with tracemalloc on; SIGUSR1 dumps a snapshot.

Started by ``python -m bench.memprofile``; the dumps go to ``$BENCH_TRACE_OUT.<n>``.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc


def main() -> None:
    tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "1")))
    out = os.environ["BENCH_TRACE_OUT"]
    count = [0]

    def dump(signum: int, frame: object) -> None:
        count[0] += 1
        tracemalloc.take_snapshot().dump(f"{out}.{count[0]}.tmp")
        os.replace(f"{out}.{count[0]}.tmp", f"{out}.{count[0]}")

    signal.signal(signal.SIGUSR1, dump)
    import uvicorn

    uvicorn.run(
        "example_project.asgi:application",
        host="127.0.0.1",
        port=int(sys.argv[1]),
        # This project's WebSocket protocol unless BENCH_TRACE_WS names another (websockets-sansio).
        ws=os.environ.get("BENCH_TRACE_WS") or "django_broadcasting.server.front.uvicorn:WebSocketProtocol",
        ws_per_message_deflate=False,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
