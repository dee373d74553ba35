"""Live job progress over a websocket: ws/jobs/<id>/progress/.

Members of the job's project join the Channels group `job-<id>`; services.job_progress_publish
sends `job.progress` events there after each batch. Each event goes out as the progress panel's
HTML (the htmx ws extension swaps it in by id), or as JSON with ?format=json.
"""

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from synthlab.errors import SynthLabError


def progress_html(progress: dict) -> str:
    return render_to_string("generation/job_detail.html#progress", {"p": progress, "ws": True})


@database_sync_to_async
def _progress_for(user, job_id):
    from . import selectors, services

    try:
        job = selectors.job_get(user=user, job_id=job_id)
    except SynthLabError:
        return None
    return services.job_progress(job)


class JobProgressConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        query = parse_qs((self.scope.get("query_string") or b"").decode())
        self.as_json = query.get("format") == ["json"]
        user = self.scope.get("user")
        progress = await _progress_for(user, self.job_id) if user is not None else None
        if progress is None:
            await self.close(code=4404)
            return
        self.group = f"job-{self.job_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._send(progress)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_progress(self, event):
        await self._send(event["progress"])

    async def _send(self, progress: dict):
        if self.as_json:
            await self.send(text_data=json.dumps({"type": "job.progress", **progress}))
        else:
            await self.send(text_data=progress_html(progress))
