"""The generation pages as a user sees them: model settings and test, job form, job page."""

import pytest

from generation import services
from generation.models import GenerationJob, JobFailure, ModelProbe
from generation.tasks import generation_job_run, generation_probe_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_publish(monkeypatch):
    """Records what would be sent to the broker (the worker tests cover the real one)."""
    sent = []
    for task in (generation_job_run, generation_probe_run):
        monkeypatch.setattr(
            task, "apply_async", lambda args, _name=task.name, **kw: sent.append((_name, args))
        )
    return sent


def test_api_key_is_write_only_and_kept_when_left_blank(client, project, admin_user):
    client.force_login(admin_user)
    url = f"/projects/{project.pk}/model/"
    data = {
        "backend": "openai",
        "base_url": "http://gpu:8000/v1",
        "model": "llama",
        "api_key": "sk-very-secret",
        "temperature": "0.3",
    }
    assert client.post(url, data).status_code == 302
    project.refresh_from_db()
    assert project.model_settings["api_key"] == "sk-very-secret" and project.model_settings["sampling"] == {
        "temperature": 0.3
    }
    page = client.get(url).content.decode()
    assert "sk-very-secret" not in page and "a key is stored" in page
    client.post(url, {**data, "api_key": ""})
    project.refresh_from_db()
    assert project.model_settings["api_key"] == "sk-very-secret"
    api = client.get(f"/api/v1/projects/{project.pk}/").json()
    assert api["model"]["api_key"] == "********"


def test_model_settings_errors_say_what_to_fix(client, project, admin_user):
    client.force_login(admin_user)
    page = client.post(
        f"/projects/{project.pk}/model/", {"backend": "openai", "base_url": "gpu:8000"}
    ).content.decode()
    assert "Give the endpoint&#x27;s URL" in page
    project.refresh_from_db()
    assert project.model_settings == {}


def test_test_the_model_is_queued_and_the_answer_shown_when_the_worker_is_done(
    client, project, admin_user, no_publish, django_capture_on_commit_callbacks
):
    project.model_settings = {"backend": "locmem", "responses": ["<script>alert(1)</script> hello"]}
    project.save()
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        waiting = client.post(
            f"/projects/{project.pk}/model/test/", {"prompt": "Say hi"}, HTTP_HX_REQUEST="true"
        )
    probe = ModelProbe.objects.get()
    assert no_publish == [("generation.tasks.generation_probe_run", [probe.pk])]
    assert (
        "waiting for a worker" in waiting.content.decode()
        and 'hx-trigger="every 1s"' in waiting.content.decode()
    )
    services.probe_run(probe_id=probe.pk)  # what the worker does
    answer = client.get(
        f"/projects/{project.pk}/model/test/{probe.pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; hello" in answer and "<script>alert" not in answer
    assert "every 1s" not in answer


def test_model_test_shows_a_clear_error(client, project, admin_user, no_publish):
    project.model_settings = {"backend": "transformers", "model": "/no/such/folder"}
    project.save()
    probe = ModelProbe.objects.create(project=project, prompt="hi")
    services.probe_run(probe_id=probe.pk)
    client.force_login(admin_user)
    page = client.get(f"/projects/{project.pk}/model/").content.decode()
    assert "The model could not answer" in page and "/no/such/folder" in page


def test_job_form_shows_the_prompts_and_starts_a_job(
    client, project, admin_user, make_items, no_publish, django_capture_on_commit_callbacks
):
    make_items(project, ["good", "bad"])
    make_items(project, ["eval one"], split="eval")
    client.force_login(admin_user)
    form = client.get(f"/projects/{project.pk}/jobs/new/").content.decode()
    assert "weak_label_classification" in form and "Possible labels: {labels}" in form
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/projects/{project.pk}/jobs/new/",
            {"recipe": "weak_label", "scope": "split", "split": "eval", "max_new_tokens": "16"},
        )
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert (
        job.item_filter == {"split": "eval"}
        and job.progress_total == 1
        and job.params["max_new_tokens"] == 16
    )
    assert no_publish == [("generation.tasks.generation_job_run", [job.pk])]


def test_job_page_polls_on_the_embedded_default_and_shows_failures_as_text(
    client, project, annotator, make_items, settings
):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    (item,) = make_items(project, ["x"])
    job = GenerationJob.objects.create(
        project=project, recipe="weak_label", progress_total=1, status="running"
    )
    JobFailure.objects.create(
        job=job,
        item=item,
        reason="unparseable",
        message="Not JSON.",
        raw_output="<img src=x onerror=alert(1)>",
    )
    client.force_login(annotator)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert "Unparseable output" in page and "0 / 1" in page
    assert 'hx-trigger="every 2s"' in page  # in-memory channel layer: the worker cannot push
    assert "Cancel job" not in page  # annotators watch, admins cancel
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 403
    partial = client.get(f"/jobs/{job.pk}/?partial=progress", HTTP_HX_REQUEST="true").content.decode()
    assert partial.strip().startswith('<div id="job-progress"')


def test_job_page_uses_the_websocket_with_a_shared_channel_layer(
    client, project, admin_user, make_items, settings
):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://x"]}}
    }
    make_items(project, ["x"])
    job = GenerationJob.objects.create(project=project, recipe="weak_label", progress_total=1)
    client.force_login(admin_user)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert f'ws-connect="/ws/jobs/{job.pk}/progress/"' in page and "every 2s" not in page
    assert client.post(f"/jobs/{job.pk}/cancel/").status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_outsiders_get_404_and_annotators_cannot_start_jobs(client, project, outsider, annotator):
    job = GenerationJob.objects.create(project=project, recipe="weak_label", progress_total=1)
    client.force_login(outsider)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/projects/{project.pk}/jobs/").status_code == 404
    client.force_login(annotator)
    assert client.get(f"/projects/{project.pk}/jobs/").status_code == 200
    assert client.get(f"/projects/{project.pk}/jobs/new/").status_code == 403
    assert client.get(f"/projects/{project.pk}/model/").status_code == 403
