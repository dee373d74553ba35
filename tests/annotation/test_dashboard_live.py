"""The dashboard's websocket on the real ASGI app (session login, origin check) and the configured
channel layer (in-memory on the embedded run, Redis on the PostgreSQL + Redis run): reviewers and
admins are told when an annotation lands; annotators and outsiders are refused."""

import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from annotation import stats
from annotation.models import Role
from annotation.services.review import annotation_submit, review_task_next
from synthlab.asgi import application

from .quality_factories import ANNOTATOR, items_with, quality_project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_event_throttle():
    # Project ids come back between tests; the per-process event throttle must not carry one test's
    # last send into the next.
    stats._dashboard_event_sent_at.clear()


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def socket_for(user, project):
    return WebsocketCommunicator(
        application,
        f"/ws/projects/{project.pk}/dashboard/",
        headers=[(b"cookie", cookie_for(user)), (b"origin", b"http://localhost")],
    )


def test_reviewer_hears_about_a_new_annotation(admin_user, annotator, make_user):
    rita = make_user("rita")
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (rita, Role.REVIEWER)], overlap=1
    )
    items_with(project, 1)
    reviewer_socket = socket_for(rita, project)

    def annotate():
        task = review_task_next(project=project, user=annotator, mode="rate")
        annotation_submit(task=task, user=annotator, value={"rating": 4}, client_id=uuid.uuid4())

    async def scenario():
        connected, _ = await reviewer_socket.connect()
        assert connected
        await database_sync_to_async(annotate)()
        message = await reviewer_socket.receive_json_from(timeout=5)
        assert message == {"type": "dashboard.changed"}
        await reviewer_socket.disconnect()

    async_to_sync(scenario)()


@pytest.mark.parametrize("who", ["annotator", "outsider"])
def test_annotators_and_outsiders_are_refused(who, admin_user, annotator, outsider):
    project = quality_project(admin=admin_user, members=[(annotator, ANNOTATOR)])
    socket = socket_for(annotator if who == "annotator" else outsider, project)

    async def scenario():
        connected, code = await socket.connect()
        assert not connected and code == 4403

    async_to_sync(scenario)()


def test_a_burst_of_answers_is_told_again_after_the_throttle(admin_user, annotator, make_user):
    # Events are sent at most once a second per project; the second answer's event is held back,
    # and the consumer's follow-up still tells the page to re-fetch after the burst.
    rita = make_user("rita")
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (rita, Role.REVIEWER)], overlap=1
    )
    items_with(project, 2)
    reviewer_socket = socket_for(rita, project)

    def annotate_two():
        for _ in range(2):
            task = review_task_next(project=project, user=annotator, mode="rate")
            annotation_submit(task=task, user=annotator, value={"rating": 4}, client_id=uuid.uuid4())

    async def scenario():
        connected, _ = await reviewer_socket.connect()
        assert connected
        await database_sync_to_async(annotate_two)()
        assert await reviewer_socket.receive_json_from(timeout=5) == {"type": "dashboard.changed"}
        assert await reviewer_socket.receive_json_from(timeout=5) == {"type": "dashboard.changed"}
        await reviewer_socket.disconnect()

    async_to_sync(scenario)()
