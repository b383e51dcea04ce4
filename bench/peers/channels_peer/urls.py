"""HTTP routes of the plain Channels peer: the publish view."""

from channels.layers import get_channel_layer
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
async def publish(request):
    """POST a text body: it is sent to every socket of group ``bench``."""
    await get_channel_layer().group_send("bench", {"type": "bench.message", "text": request.body.decode()})
    return HttpResponse(status=202)


urlpatterns = [path("publish", publish)]
