"""The benchmark harness: ``python -m bench`` (``make bench``); ``--smoke`` for a seconds-long check.

Scenarios (docs/performance.md explains them and holds the latest table):

- S1 local fan-out, S2 idle memory, S3 cross-process through Redis (S3C: on a Redis Cluster of 3,
  `bench/s3c.py`), S4 churn with presence;
- side by side in one run: this project on uvicorn and daphne, plain Channels ``group_send``
  (``bench/peers/channels_peer``) and a raw ``websockets.broadcast()`` server (``bench/peers``).

Load generators are separate processes (``bench/loadgen.py``); the bench is not part of the
test suite, except its smoke mode (tests/test_bench_smoke.py).
"""
