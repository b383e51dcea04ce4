"""URLs of the example chat (mounted at ``chat/``)."""

from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.room_list, name="rooms"),
    path("<int:room_id>/", views.room, name="room"),
    path("<int:room_id>/messages", views.post_message, name="post_message"),
]
