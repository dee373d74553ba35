"""Starting, reading and cancelling jobs over the REST API, and who may do what."""

import pytest

from annotation.models import Item
from generation.models import GenerationJob, JobFailure
from generation.tasks import generation_job_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_at():
    """Points the Celery app at another broker for one test, then back."""
    from synthlab.celery import app

    saved = (app.conf.broker_url, app.conf.broker_transport_options)

    def point(url, options):
        app.conf.broker_url, app.conf.broker_transport_options = url, options

    yield point
    app.conf.broker_url, app.conf.broker_transport_options = saved


@pytest.fixture
def items(project, make_items):
    train = make_items(project, ["good film", "bad film"])
    evals = make_items(project, ["fine film"], split="eval")
    return train + evals


def test_admin_starts_a_job_answers_202_and_it_is_queued_after_commit(
    project, items, admin_user, api_client_for, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    # The broker itself is exercised by the worker tests; here we only check what is enqueued.
    monkeypatch.setattr(generation_job_run, "apply_async", lambda args, **kw: sent.append((args, kw)))
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(admin_user).post(
            f"/api/v1/projects/{project.pk}/jobs/",
            {"recipe": "weak_label", "params": {"max_new_tokens": 32}, "items": {"split": "train"}},
            format="json",
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["progress"] == {"done": 0, "total": 2}
    assert body["items"] == {"split": "train"} and body["params"]["max_new_tokens"] == 32
    assert sent == [([body["id"]], {"retry": False})]
    assert generation_job_run.name.startswith("generation.tasks.")


def test_job_detail_lists_errors_with_raw_output(project, items, admin_user, annotator, api_client_for):
    job = GenerationJob.objects.create(
        project=project,
        recipe="weak_label",
        progress_total=3,
        progress_done=3,
        failures_count=1,
        status="succeeded",
    )
    JobFailure.objects.create(
        job=job, item=items[0], reason="unparseable", message="Not JSON.", raw_output="<b>oops</b>"
    )
    body = api_client_for(annotator).get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["status"] == "succeeded" and body["progress"] == {"done": 3, "total": 3}
    assert body["errors"] == [
        {
            "item": items[0].pk,
            "reason": "unparseable",
            "message": "Not JSON.",
            "raw_output": "<b>oops</b>",
            "created_at": body["errors"][0]["created_at"],
        }
    ]
    assert body["created"] == {"candidates": 0, "review_tasks": 0}


def test_only_admins_start_and_cancel_and_outsiders_see_nothing(
    project, items, annotator, outsider, admin_user, api_client_for
):
    assert (
        api_client_for(annotator)
        .post(f"/api/v1/projects/{project.pk}/jobs/", {"recipe": "weak_label"}, format="json")
        .status_code
        == 403
    )
    assert (
        api_client_for(outsider)
        .post(f"/api/v1/projects/{project.pk}/jobs/", {"recipe": "weak_label"}, format="json")
        .status_code
        == 404
    )
    job = GenerationJob.objects.create(project=project, recipe="weak_label", progress_total=1)
    assert api_client_for(outsider).get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert api_client_for(annotator).post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403
    assert api_client_for(annotator).get(f"/api/v1/projects/{project.pk}/jobs/").json()["count"] == 1
    cancelled = api_client_for(admin_user).post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert GenerationJob.objects.count() == 1 and not GenerationJob.objects.exclude(pk=job.pk).exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"recipe": "nope"}, 'Unknown recipe "nope"'),
        ({"recipe": "candidates", "params": {"n": 99}}, "n (responses per item)"),
        ({"recipe": "weak_label", "params": {"temperature": "hot"}}, "temperature must be a number"),
        ({"recipe": "weak_label", "items": {"split": "test"}}, "split must be one of"),
        ({"recipe": "weak_label", "items": {"ids": [999999]}}, "No items match"),
    ],
)
def test_bad_job_requests_say_what_to_fix_and_create_nothing(
    project, items, admin_user, api_client_for, body, message
):
    response = api_client_for(admin_user).post(f"/api/v1/projects/{project.pk}/jobs/", body, format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert not GenerationJob.objects.exists()


def test_items_without_candidates_scope_is_fixed_when_the_job_starts(project, make_items, admin_user):
    from annotation.models import Candidate
    from generation import selectors, services

    fresh, done = make_items(project, ["a", "b"])
    Candidate.objects.create(item=done, text="x", source="import")
    job = services.job_create_local(project=project, recipe="weak_label", items={"without_candidates": True})
    assert job.progress_total == 1
    Candidate.objects.create(item=fresh, text="made by the job", source="model")
    make_items(project, ["imported later"])
    assert list(selectors.job_items(job=job)) == [fresh]
    assert Item.objects.filter(project=project).count() == 3


def test_broker_down_answers_503_and_runs_nothing_in_process(
    project, items, admin_user, api_client_for, broker_at
):
    # A real connection attempt to a port where no broker listens.
    broker_at("redis://127.0.0.1:9/0", {})
    project.model_settings = {"backend": "locmem"}
    project.save()
    response = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/jobs/", {"recipe": "weak_label"}, format="json"
    )
    assert response.status_code == 503
    assert (
        "not reachable" in response.json()["error"]["message"]
        and "nothing was started" in response.json()["error"]["message"]
    )
    assert not GenerationJob.objects.exists()
    from generation.backends import locmem

    assert locmem.sent == []  # the model was never called
    probe = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/model/test/", {"prompt": "hi"}, format="json"
    )
    assert probe.status_code == 503


def test_broker_folder_missing_answers_503(project, items, admin_user, api_client_for, broker_at, tmp_path):
    broker_at("filesystem://", {"data_folder_in": str(tmp_path / "gone")})
    response = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/jobs/", {"recipe": "weak_label"}, format="json"
    )
    assert response.status_code == 503 and "SYNTHLAB_DATA_DIR" in response.json()["error"]["message"]


def test_publish_failure_after_commit_marks_the_job_failed(
    project, items, admin_user, django_capture_on_commit_callbacks, monkeypatch
):
    from generation import services

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("broker went away")

    monkeypatch.setattr(generation_job_run, "apply_async", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.job_create(project=project, user=admin_user, recipe="weak_label")
    job.refresh_from_db()
    assert job.status == "failed" and "Could not reach the job queue" in job.message
