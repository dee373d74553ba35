"""The exports REST API: who may create, preview, read and download; bad requests; the broker down."""

import json

import pytest

from annotation.models import Export, Membership, Role
from annotation.services.projects import project_create
from annotation.tasks import export_run_task

from .export_helpers import instruction_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(admin_user, annotator, make_user):
    project, cands = instruction_project(admin_user, make_user)
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    return project


def create(client, project, body=None):
    return client.post(
        f"/api/v1/projects/{project.pk}/exports/",
        body or {"format": "dpo", "file_type": "jsonl"},
        format="json",
    )


def test_admin_creates_an_export_that_answers_202_then_runs_and_downloads(setup, admin_user, api_client_for):
    client = api_client_for(admin_user)
    response = create(
        client, setup, {"format": "dpo", "file_type": "jsonl", "filters": {"min_agreement": 0.5}}
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["download_url"] is None
    assert body["filters"]["min_agreement"] == 0.5 and body["filters"]["completed_only"] is True

    # Queued until a worker runs the task (here: the task function, in this process).
    assert client.get(f"/api/v1/exports/{body['id']}/download/").status_code == 409
    export_run_task(body["id"])

    status = client.get(f"/api/v1/exports/{body['id']}/").json()
    assert status["status"] == "succeeded"
    assert status["row_count"] == 3 and status["progress"] == {"done": 6, "total": 6}
    assert status["counts"]["by_rule"] == {"compare_majority": 1, "edit_vs_draft": 1, "rating_best_worst": 1}
    assert status["counts"]["eval_leaks_removed"] == 1
    assert status["download_url"].endswith(f"/api/v1/exports/{body['id']}/download/")

    download = client.get(f"/api/v1/exports/{body['id']}/download/")
    assert download.status_code == 200
    assert download["Content-Type"] == "application/x-ndjson"
    assert f"dpo-{body['id']}.jsonl" in download["Content-Disposition"]
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert len(lines) == 3 and {json.loads(line)["chosen"] for line in lines} == {
        "Paris.",
        "Blue.",
        "the cat",
    }

    listed = client.get(f"/api/v1/projects/{setup.pk}/exports/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"]


def test_preview_counts_the_rows_the_export_will_have(setup, admin_user, api_client_for):
    client = api_client_for(admin_user)
    preview = client.post(
        f"/api/v1/projects/{setup.pk}/exports/preview/", {"format": "kto"}, format="json"
    ).json()
    assert preview["rows"] == 7 and preview["exact"] is True and preview["eval_leaks_removed"] == 1
    assert preview["by_rule"] == {
        "accepted_edit": 1,
        "both_bad": 2,
        "rating_desirable": 2,
        "rating_undesirable": 2,
    }
    assert not Export.objects.exists()  # a preview stores nothing
    export_id = create(client, setup, {"format": "kto"}).json()["id"]
    export_run_task(export_id)
    assert Export.objects.get(pk=export_id).row_count == preview["rows"]


def test_annotators_read_and_download_but_do_not_create(setup, admin_user, annotator, api_client_for):
    export_id = create(api_client_for(admin_user), setup).json()["id"]
    export_run_task(export_id)
    client = api_client_for(annotator)
    assert create(client, setup).status_code == 403
    assert (
        client.post(
            f"/api/v1/projects/{setup.pk}/exports/preview/", {"format": "sft"}, format="json"
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/exports/{export_id}/").status_code == 200
    assert client.get(f"/api/v1/exports/{export_id}/download/").status_code == 200


def test_non_members_get_404_for_everything(setup, admin_user, outsider, api_client_for):
    export_id = create(api_client_for(admin_user), setup).json()["id"]
    export_run_task(export_id)
    client = api_client_for(outsider)
    assert create(client, setup).status_code == 404
    assert client.get(f"/api/v1/projects/{setup.pk}/exports/").status_code == 404
    assert client.get(f"/api/v1/exports/{export_id}/").status_code == 404
    assert client.get(f"/api/v1/exports/{export_id}/download/").status_code == 404
    # An admin of another project is still an outsider here.
    project_create(user=outsider, data={"name": "Elsewhere"})
    assert client.get(f"/api/v1/exports/{export_id}/download/").status_code == 404
    assert api_client_for().get(f"/api/v1/exports/{export_id}/").status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"format": "tsv"}, "format", "not a valid choice"),
        ({"format": "dpo", "file_type": "csv"}, "file_type", "not a valid choice"),
        ({"format": "dpo", "filters": {"min_score": 3}}, "filters.min_score", "Unknown filter 'min_score'"),
        ({"format": "dpo", "filters": {"min_rating": 9}}, "filters.min_rating", "from 1 to 5"),
        ({"format": "dpo", "filters": {"split": "eval"}}, "filters.split", "train split only"),
        ({"format": "dpo", "filters": {"annotators": ["nobody"]}}, "filters.annotators", "not a member"),
        ({"format": "dpo", "filters": {"date_from": "yesterday"}}, "filters.date_from", "ISO date"),
        ({"format": "dpo", "options": {"rules": ["votes"]}}, "options.rules", "compare, rating, edit"),
        ({"format": "conll"}, "format", "needs a ner project"),
    ],
)
def test_bad_requests_say_what_to_fix_and_store_nothing(
    setup, admin_user, api_client_for, body, field, words
):
    response = create(api_client_for(admin_user), setup, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert any(d["field"] == field and words in d["message"] for d in error["details"]), error
    assert not Export.objects.exists()


def test_broker_down_answers_503_and_stores_nothing(setup, admin_user, api_client_for):
    from synthlab.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    # A real connection attempt to a port where no broker listens.
    app.conf.broker_url, app.conf.broker_transport_options = "redis://127.0.0.1:9/0", {}
    try:
        response = create(api_client_for(admin_user), setup)
    finally:
        app.conf.broker_url, app.conf.broker_transport_options = saved
    assert response.status_code == 503 and "not reachable" in response.json()["error"]["message"]
    assert not Export.objects.exists()


def test_a_queue_failure_after_commit_marks_the_export_failed(
    setup, admin_user, api_client_for, django_capture_on_commit_callbacks, monkeypatch
):
    from annotation.tasks import export_run_task as task

    def refuse(*args, **kwargs):
        raise ConnectionError("broker went away")

    # The broker vanishing between the check and the commit cannot be staged with a real broker.
    monkeypatch.setattr(task, "apply_async", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        response = create(api_client_for(admin_user), setup)
    assert response.status_code == 202
    export = Export.objects.get()
    assert export.status == "failed" and "broker went away" in export.message


def test_the_export_is_queued_on_commit_to_the_default_queue(
    setup, admin_user, api_client_for, django_capture_on_commit_callbacks, monkeypatch
):
    from annotation.tasks import export_run_task as task

    sent = []
    # What is sent is checked here; a real broker and worker run it in test_export_background.
    monkeypatch.setattr(task, "apply_async", lambda args, **kw: sent.append((args, kw)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        export_id = create(api_client_for(admin_user), setup).json()["id"]
    assert sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert sent == [((export_id,), {"queue": "default", "retry": False})]
