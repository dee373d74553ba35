"""The admin's live queue counts over a real websocket (channels WebsocketCommunicator on the real
ASGI app, session login, origin check). Uses the configured channel layer: in-memory on the embedded
run, Redis on the PostgreSQL + Redis run."""

import re
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from annotation.services import review as review_services
from annotation.services.review import annotation_submit, review_task_next
from synthlab.asgi import application

from .review_factories import items_with_candidates, queue_project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_event_throttle():
    # Project ids come back between tests (rolled-back sequences); the per-process event throttle
    # must not carry one test's last send into the next.
    review_services._event_sent_at.clear()


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def counts(html: str, mode: str) -> tuple[int, int, int]:
    row = re.search(
        rf'<tr data-mode="{mode}">.*?class="open">(\d+)<.*?class="leased">(\d+)<.*?class="done">(\d+)<',
        html,
        re.S,
    )
    return tuple(int(n) for n in row.groups())


def connect(cookie: bytes, project):
    return WebsocketCommunicator(
        application,
        f"/ws/projects/{project.pk}/queue/live/",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost")],
    )


def test_admin_sees_leases_and_answers_as_they_happen(admin_user, annotator):
    project = queue_project(admin=admin_user, annotators=[annotator], modes=["rate", "compare"])
    items_with_candidates(project, 3)  # two candidates each: 6 rate tasks, 3 compare tasks
    cookie = cookie_for(admin_user)

    async def scenario():
        socket = connect(cookie, project)
        connected, _ = await socket.connect()
        assert connected
        first = await socket.receive_from(timeout=5)
        assert counts(first, "rate") == (6, 0, 0) and counts(first, "compare") == (3, 0, 0)
        assert "No answers yet." in first

        task = await database_sync_to_async(review_task_next)(project=project, user=annotator, mode="rate")
        leased = await socket.receive_from(timeout=5)
        assert counts(leased, "rate") == (5, 1, 0)

        await database_sync_to_async(annotation_submit)(
            task=task, user=annotator, value={"rating": 4}, client_id=uuid.uuid4()
        )
        done = await socket.receive_from(timeout=5)
        assert counts(done, "rate") == (5, 0, 1)
        assert re.search(r'<tr data-annotator="bob"><td>bob</td><td class="last-hour">1</td>', done)
        await socket.disconnect()

    async_to_sync(scenario)()


def test_annotators_and_strangers_cannot_watch(admin_user, annotator, outsider):
    project = queue_project(admin=admin_user, annotators=[annotator])
    cookies = [cookie_for(annotator), cookie_for(outsider)]

    async def scenario():
        for cookie in cookies:
            socket = connect(cookie, project)
            connected, _ = await socket.connect()
            assert not connected
            await socket.disconnect()

    async_to_sync(scenario)()
