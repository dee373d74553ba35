from django.urls import path

from .consumers import JobProgressConsumer

websocket_urlpatterns: list = [
    path("ws/jobs/<int:job_id>/progress/", JobProgressConsumer.as_asgi()),
]
