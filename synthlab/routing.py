"""Websocket routes of every app, gathered in one list for asgi.py."""

from annotation.routing import websocket_urlpatterns as annotation_ws
from generation.routing import websocket_urlpatterns as generation_ws

websocket_urlpatterns = [*annotation_ws, *generation_ws]
