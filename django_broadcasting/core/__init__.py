"""The neutral core: what ``auth/``, ``backends/``, ``server/`` and ``http/`` all need.

- ``core.codes``: WebSocket close codes and error-frame codes;
- ``core.serving``: whether this process serves WebSockets, and its hub as other layers see it.

It imports nothing else of the package (see docs/architecture.md for the layers).
"""
