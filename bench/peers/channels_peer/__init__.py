"""Peer: plain Django Channels fan-out, one ``group_send`` to a group every socket joined.

What the Channels tutorial builds: an ``AsyncWebsocketConsumer`` in group ``bench`` and a view that
calls ``channel_layer.group_send``. ``PEER_LAYER=memory`` uses ``InMemoryChannelLayer``,
``PEER_LAYER=redis`` uses ``channels_redis`` on ``127.0.0.1:$PEER_REDIS_PORT``.
"""
