"""Websocket for the quality dashboard: reviewers and admins of a project join its dashboard group
and are told when numbers changed (`dashboard.changed`); the page then re-fetches its charts.

Events are sent at most once per DASHBOARD_EVENT_INTERVAL per project and server process
(stats.dashboard_event_send), so after the last event of a burst the page is told once more,
FOLLOW_UP later: changes whose events were held back show too."""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from synthlab.errors import SynthLabError

from . import selectors
from .models import Role
from .stats import DASHBOARD_EVENT_INTERVAL, dashboard_group


@database_sync_to_async
def _may_watch(user, project_id) -> bool:
    try:
        selectors.project_get(user=user, project_id=project_id, min_role=Role.REVIEWER)
    except SynthLabError:
        return False
    return True


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    group = None
    follow_up = None
    FOLLOW_UP = DASHBOARD_EVENT_INTERVAL + 0.5

    async def connect(self):
        project_id = self.scope["url_route"]["kwargs"]["project_id"]
        if not await _may_watch(self.scope["user"], project_id):
            await self.close(code=4403)
            return
        self.group = dashboard_group(int(project_id))
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.follow_up:
            self.follow_up.cancel()

    async def dashboard_changed(self, event):
        await self.send_json({"type": "dashboard.changed"})
        if self.follow_up:
            self.follow_up.cancel()
        self.follow_up = asyncio.ensure_future(self._tell_again())

    async def _tell_again(self):
        await asyncio.sleep(self.FOLLOW_UP)
        await self.send_json({"type": "dashboard.changed"})
