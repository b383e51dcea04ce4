"""Integration tests: real daphne/uvicorn processes over real sockets, a real Redis."""
