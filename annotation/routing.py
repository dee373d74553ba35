from django.urls import path

from .consumers import QueueLiveConsumer
from .dashboard_consumers import DashboardConsumer
from .export_consumers import ExportProgressConsumer

websocket_urlpatterns: list = [
    path("ws/exports/<int:export_id>/progress/", ExportProgressConsumer.as_asgi()),
    path("ws/projects/<int:project_id>/dashboard/", DashboardConsumer.as_asgi()),
    path("ws/projects/<int:project_id>/queue/live/", QueueLiveConsumer.as_asgi()),
]
