"""The consumer every Channels tutorial writes: join a group, forward its messages."""

from channels.generic.websocket import AsyncWebsocketConsumer


class BenchConsumer(AsyncWebsocketConsumer):
    groups = ["bench"]  # joined by websocket_connect before connect() runs

    async def connect(self):
        await self.accept()
        await self.send(text_data="ready")

    async def bench_message(self, event):
        await self.send(text_data=event["text"])
