"""Live export progress over a websocket: ws/exports/<id>/progress/.

Members of the export's project join the Channels group `export-<id>`; services.exports sends
`export.progress` events there after commit. Each event goes out as the status panel's HTML (the
htmx ws extension swaps it in by id), or as JSON with ?format=json.
"""

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from synthlab.errors import SynthLabError


@database_sync_to_async
def _visible(user, export_id) -> bool:
    from .exports.selectors import export_get

    if user is None or not user.is_authenticated:
        return False
    try:
        export_get(user=user, export_id=export_id)
    except SynthLabError:
        return False
    return True


@database_sync_to_async
def _status_html(export_id) -> str:
    from django.template.loader import render_to_string

    from .models import Export
    from .views.exports import export_status_context

    export = Export.objects.select_related("project").get(pk=export_id)
    return render_to_string("annotation/export_detail.html#status", export_status_context(export, ws=True))


@database_sync_to_async
def _event(export_id) -> dict:
    from .models import Export
    from .services.exports import export_progress_event

    return export_progress_event(Export.objects.get(pk=export_id))


class ExportProgressConsumer(AsyncWebsocketConsumer):
    group = None

    async def connect(self):
        self.export_id = self.scope["url_route"]["kwargs"]["export_id"]
        query = parse_qs((self.scope.get("query_string") or b"").decode())
        self.as_json = query.get("format") == ["json"]
        if not await _visible(self.scope.get("user"), self.export_id):
            await self.close(code=4404)
            return
        self.group = f"export-{self.export_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        if self.as_json:
            await self.send(text_data=json.dumps(await _event(self.export_id)))
        else:
            await self.send(text_data=await _status_html(self.export_id))

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def export_progress(self, event):
        if self.as_json:
            await self.send(text_data=json.dumps(event))
        else:
            await self.send(text_data=await _status_html(self.export_id))
