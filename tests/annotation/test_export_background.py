"""The background path: a real Celery worker process picks up the export after commit (the filesystem
broker on the embedded run, Redis on the PostgreSQL + Redis run), live progress reaches a websocket,
and a second delivery of the same task changes nothing."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client

from annotation.models import Export, Membership, Role
from annotation.services import exports as export_services
from annotation.tasks import export_run_task
from generation.worker import worker_start, worker_stop
from synthlab.asgi import application
from tests.generation.conftest import wait_for

from .export_helpers import export_path, instruction_project, read_jsonl

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(tmp_path, settings):
    """One real worker on the `default` queue, against this test database and broker. It writes
    under its own EXPORT_DIR (base settings): the test reads files from there."""
    settings.EXPORT_DIR = str(settings.DATA_DIR / "exports")
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    process = worker_start(
        queues=["default"],
        env={
            "DJANGO_SETTINGS_MODULE": "tests.generation.worker_settings",
            "SYNTHLAB_TEST_DB_NAME": str(connection.settings_dict["NAME"]),
            "SYNTHLAB_DATA_DIR": str(settings.DATA_DIR),
            "PYTHONUNBUFFERED": "1",
        },
        stdout=log,
        stderr=log,
    )
    process.log_path = tmp_path / "worker.log"
    yield process
    worker_stop(process)
    log.close()


def worker_log(process) -> str:
    return process.log_path.read_text(errors="replace")[-3000:]


@pytest.mark.slow
def test_a_real_worker_runs_the_export_after_commit_and_a_redelivery_is_a_no_op(
    admin_user, make_user, worker
):
    project, _ = instruction_project(admin_user, make_user)
    export = export_services.export_create(
        project=project, user=admin_user, format="dpo", file_type="parquet"
    )
    done = wait_for(
        lambda: (e := Export.objects.get(pk=export.pk)).status in ("succeeded", "failed") and e,
        timeout=90,
        what=f"the worker to run the export\n{worker_log(worker)}",
    )
    assert done.status == "succeeded", done.message
    assert done.row_count == 3 and done.progress_done == done.progress_total == 6
    assert export_path(done).is_file()

    export_run_task.delay(export.pk)  # the same task delivered again
    wait_for(
        lambda: "export_run_task" in worker_log(worker) and worker_log(worker).count("succeeded in") >= 2,
        timeout=60,
        what=f"the second delivery\n{worker_log(worker)}",
    )
    again = Export.objects.get(pk=export.pk)
    assert (again.status, again.finished_at, again.file_path) == (
        "succeeded",
        done.finished_at,
        done.file_path,
    )


def cookie_for(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


def socket_for(cookie, export, query=""):
    return WebsocketCommunicator(
        application,
        f"/ws/exports/{export.pk}/progress/{query}",
        headers=[(b"cookie", cookie), (b"origin", b"http://localhost")],
    )


def test_members_watch_progress_over_a_websocket_and_outsiders_are_refused(
    admin_user, annotator, outsider, make_user
):
    project, _ = instruction_project(admin_user, make_user)
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    export = Export.objects.create(project=project, format="sft", file_type="jsonl", created_by=admin_user)
    member, admin, stranger = cookie_for(annotator), cookie_for(admin_user), cookie_for(outsider)

    async def scenario():
        html = socket_for(member, export)
        assert (await html.connect())[0]
        first = await html.receive_from(timeout=5)
        assert 'id="export-status"' in first and "Queued" in first
        events = socket_for(admin, export, "?format=json")
        assert (await events.connect())[0]
        assert json.loads(await events.receive_from(timeout=5))["status"] == "queued"

        await database_sync_to_async(export_services.export_run)(export_id=export.pk)
        statuses = []
        while "succeeded" not in statuses:
            statuses.append(json.loads(await events.receive_from(timeout=5))["status"])
        assert statuses[0] == "running"
        pages = []
        while not any("Succeeded" in p for p in pages):
            pages.append(await html.receive_from(timeout=5))
        assert "3 rows" in pages[-1] and "Download" in pages[-1]
        assert 'hx-trigger="every' not in pages[-1]  # pushed, not polled
        await html.disconnect()
        await events.disconnect()

        refused = socket_for(stranger, export)
        connected, code = await refused.connect()
        assert not connected and code == 4404

    async_to_sync(scenario)()
    rows = read_jsonl(export_path(Export.objects.get(pk=export.pk)))
    assert [r["completion"] for r in rows] == ["Paris.", "Blue.", "the cat"]
