"""The consumer every Channels tutorial writes: join a group, forward its messages.

``/ws`` joins group ``bench`` (S1: one group, N sockets); ``/ws/<group>`` joins the group its URL
names (S5: many groups, one socket each, like a per-user notification channel).
"""

from channels.generic.websocket import AsyncWebsocketConsumer


class BenchConsumer(AsyncWebsocketConsumer):
    groups = ["bench"]  # joined by websocket_connect before connect() runs

    async def connect(self):
        await self.accept()
        await self.send(text_data="ready")

    async def bench_message(self, event):
        await self.send(text_data=event["text"])


class GroupConsumer(BenchConsumer):
    groups = []

    async def connect(self):
        self.group = self.scope["url_route"]["kwargs"]["group"]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data="ready")

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)
