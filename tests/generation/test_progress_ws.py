"""Live job progress over a real websocket (channels WebsocketCommunicator on the real ASGI app,
session login, origin check). The configured channel layer is used: in-memory on the embedded run,
channels_redis on the PostgreSQL + Redis run."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from generation import services
from synthlab.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def connect(cookie: bytes, job, query: str = ""):
    return WebsocketCommunicator(
        application,
        f"/ws/jobs/{job.pk}/progress/{query}",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost")],
    )


def test_member_watches_progress_until_the_job_finishes(admin_user, annotator, make_items):
    from annotation.models import Membership
    from annotation.services.projects import project_create

    project = project_create(
        user=admin_user, data={"name": "Chat", "task_type": "instruction", "modes": ["rate"]}
    )
    Membership.objects.create(project=project, user=annotator, role="annotator")
    project.model_settings = {"backend": "locmem", "responses": ["ok", "!error", "ok"]}
    project.save()
    make_items(project, ["a", "b", "c"])
    job = services.job_create_local(project=project, recipe="weak_label", params={"batch_size": 1})
    cookie = cookie_for(annotator)

    async def scenario():
        socket = connect(cookie, job)
        connected, _ = await socket.connect()
        assert connected
        first = await socket.receive_from(timeout=5)
        assert 'id="job-progress"' in first and "0 / 3" in first and "Queued" in first
        await database_sync_to_async(services.job_run)(job_id=job.pk)
        seen = []
        while True:
            html = await socket.receive_from(timeout=5)
            seen.append(html)
            if "Succeeded" in html:
                break
        assert any("1 / 3" in h for h in seen) and any("2 / 3" in h for h in seen)
        assert "3 / 3" in seen[-1] and "1 failures" in seen[-1] and "tokens/s" in seen[-1]
        assert 'hx-trigger="every' not in seen[-1]  # pushed, not polled
        await socket.disconnect()

    async_to_sync(scenario)()


def test_scripts_can_ask_for_json_events(project, annotator, make_items):
    project.model_settings = {"backend": "locmem"}
    project.save()
    make_items(project, ["a"])
    job = services.job_create_local(project=project, recipe="weak_label")
    cookie = cookie_for(annotator)

    async def scenario():
        socket = connect(cookie, job, "?format=json")
        assert (await socket.connect())[0]
        snapshot = json.loads(await socket.receive_from(timeout=5))
        assert (
            snapshot["type"] == "job.progress" and snapshot["total"] == 1 and snapshot["status"] == "queued"
        )
        await database_sync_to_async(services.job_cancel)(job=job)
        cancelled = json.loads(await socket.receive_from(timeout=5))
        assert cancelled["status"] == "cancelled" and cancelled["finished"] is True
        await socket.disconnect()

    async_to_sync(scenario)()


def test_strangers_cannot_watch(project, outsider, make_items):
    make_items(project, ["a"])
    job = services.job_create_local(project=project, recipe="weak_label")
    cookie = cookie_for(outsider)

    async def scenario():
        socket = connect(cookie, job)
        connected, _ = await socket.connect()
        assert not connected
        anonymous = WebsocketCommunicator(
            application, f"/ws/jobs/{job.pk}/progress/", headers=[(b"origin", b"http://localhost")]
        )
        assert not (await anonymous.connect())[0]

    async_to_sync(scenario)()
