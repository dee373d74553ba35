"""Live queue counts for a project's admins over a websocket: ws/projects/<id>/queue/live/.

Admins join the Channels group `project-<id>`; the review services send `queue.changed` events
there after commits (services.review.queue_event_send, at most one per EVENT_INTERVAL per project and
server process). A burst of events becomes one refresh: the consumer waits REFRESH_DELAY, reads the
counts and sends the counts panel as HTML, which the htmx ws extension swaps in by id; it reads them
once more after FOLLOW_UP (longer than EVENT_INTERVAL), so changes whose events were held back show
too.
"""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from synthlab.errors import SynthLabError

from .models import Role
from .services.review import EVENT_INTERVAL, queue_group


@database_sync_to_async
def _admin_project(user, project_id):
    from .selectors import project_get

    if user is None or not user.is_authenticated:
        return None
    try:
        return project_get(user=user, project_id=project_id, min_role=Role.ADMIN)
    except SynthLabError:
        return None


@database_sync_to_async
def _counts_html(project) -> str:
    from .review_selectors import queue_counts

    return render_to_string(
        "annotation/review_live.html#counts",
        {"project": project, "counts": queue_counts(project=project), "live": True},
    )


class QueueLiveConsumer(AsyncWebsocketConsumer):
    REFRESH_DELAY = 0.3
    FOLLOW_UP = EVENT_INTERVAL + 0.5

    async def connect(self):
        project_id = self.scope["url_route"]["kwargs"]["project_id"]
        self.project = await _admin_project(self.scope.get("user"), project_id)
        if self.project is None:
            await self.close(code=4403)
            return
        self.refresh = None
        self.events = 0
        self.group = queue_group(self.project.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=await _counts_html(self.project))

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "refresh", None):
            self.refresh.cancel()

    async def queue_changed(self, event):
        self.events += 1
        if self.refresh is None or self.refresh.done():
            self.refresh = asyncio.ensure_future(self._refresh())

    async def _refresh(self):
        while True:
            await asyncio.sleep(self.REFRESH_DELAY)
            await self.send(text_data=await _counts_html(self.project))
            seen = self.events
            await asyncio.sleep(self.FOLLOW_UP)
            await self.send(text_data=await _counts_html(self.project))
            if self.events == seen:
                return
