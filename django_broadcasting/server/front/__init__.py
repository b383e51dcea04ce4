"""Server fronts owned by this project: the WebSocket protocol layer under an ASGI server.

``uvicorn.WebSocketProtocol`` replaces uvicorn's own WebSocket implementations
(``uvicorn --ws django_broadcasting.server.front.uvicorn:WebSocketProtocol``); ``handshake``,
``reader`` and ``wire`` are its HTTP, frame-parsing and frame-encoding halves, ``shared`` what
the sockets of one server share (settings and the one keepalive timer).
"""
