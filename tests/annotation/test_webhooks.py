"""Webhooks: registration and the SSRF guard, signed deliveries sent by a real Celery worker to a
real HTTP server on 127.0.0.1, retries with backoff on failure, the delivery log and re-sending."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery.contrib.testing.worker import start_worker

from annotation.models import DeliveryStatus, Webhook, WebhookDelivery
from annotation.services import webhooks
from annotation.tasks import webhook_deliver
from synthlab.celery import app as celery_app

SECRET = "a-test-secret-of-enough-length"


class Receiver:
    """An HTTP server on 127.0.0.1 that answers each POST with the next scripted status code."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code < 300 else b"boom")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def allow_private(settings):
    # The receiver runs on loopback, which the SSRF guard refuses unless explicitly allowed.
    settings.SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE = True
    return settings


def _verify(secret: str, request: dict) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request["headers"].get("X-SynthLab-Signature-256", ""))


# --- Registration and the SSRF guard -----------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_address_url_is_refused(project, admin_user, api_client_for, url):
    response = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/webhooks/", {"url": url, "events": ["task.completed"]}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert "private or loopback" in error["message"]
    assert "SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE" in error["message"]
    assert error["details"][0]["field"] == "url"
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_bad_url_and_unknown_event_get_clear_errors(project, admin_user, api_client_for):
    client = api_client_for(admin_user)
    url = f"/api/v1/projects/{project.pk}/webhooks/"
    bad = client.post(url, {"url": "ftp://example.com/x", "events": ["task.completed"]}, format="json")
    assert bad.status_code == 400 and "http://" in bad.json()["error"]["message"]
    unknown = client.post(url, {"url": "http://93.184.215.14/", "events": ["task.done"]}, format="json")
    assert unknown.status_code == 400 and "task.done" in unknown.json()["error"]["message"]
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_webhook_api_registers_lists_and_hides_the_secret(
    project, admin_user, annotator, outsider, api_client_for, allow_private
):
    client = api_client_for(admin_user)
    url = f"/api/v1/projects/{project.pk}/webhooks/"
    created = client.post(
        url,
        {"url": "http://127.0.0.1:9/hook", "events": ["task.completed", "export.ready"], "secret": SECRET},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["secret"] == SECRET  # shown once, on creation
    listed = client.get(url).json()
    assert listed["count"] == 1
    row = listed["results"][0]
    assert row["url"] == "http://127.0.0.1:9/hook"
    assert row["events"] == ["task.completed", "export.ready"]
    assert "secret" not in row
    # A generated secret when none is given.
    generated = client.post(
        url, {"url": "http://127.0.0.1:9/other", "events": ["job.finished"]}, format="json"
    )
    assert len(generated.json()["secret"]) >= 32
    # Webhooks are for admins: annotators are forbidden, outsiders see nothing.
    assert api_client_for(annotator).get(url).status_code == 403
    assert api_client_for(outsider).get(url).status_code == 404


# --- Delivery ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_delivery_is_signed_with_the_hooks_secret(project, admin_user, allow_private):
    with Receiver([200]) as receiver:
        hook = webhooks.webhook_create(
            project=project, url=receiver.url, events=["task.completed"], secret=SECRET, user=admin_user
        )
        [delivery] = webhooks.webhook_event_emit(project=project, event="task.completed", data={"task": 7})
        webhook_deliver(delivery.pk)  # the task body, run inline
    [request] = receiver.requests
    assert _verify(SECRET, request)
    assert not _verify("some-other-secret-entirely", request)
    assert webhooks.webhook_signature_valid(
        secret=hook.secret, body=request["body"], header=request["headers"]["X-SynthLab-Signature-256"]
    )
    body = json.loads(request["body"])
    assert body["event"] == "task.completed"
    assert body["data"] == {"task": 7}
    assert body["project"] == project.pk
    assert request["headers"]["X-SynthLab-Event"] == "task.completed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        DeliveryStatus.SUCCEEDED,
        1,
        200,
    )


@pytest.mark.django_db
def test_only_active_hooks_listening_to_the_event_get_a_delivery(project, admin_user, allow_private):
    listening = webhooks.webhook_create(
        project=project, url="http://127.0.0.1:9/a", events=["annotation.created"], secret=SECRET
    )
    webhooks.webhook_create(
        project=project, url="http://127.0.0.1:9/b", events=["job.finished"], secret=SECRET
    )
    paused = webhooks.webhook_create(
        project=project, url="http://127.0.0.1:9/c", events=["annotation.created"], secret=SECRET
    )
    webhooks.webhook_update(webhook=paused, active=False)
    deliveries = webhooks.webhook_event_emit(project=project, event="annotation.created", data={})
    assert [d.webhook_id for d in deliveries] == [listening.pk]


@pytest.mark.django_db
def test_failed_attempts_back_off_then_give_up(project, allow_private, settings):
    settings.SYNTHLAB_WEBHOOK_MAX_ATTEMPTS = 3
    settings.SYNTHLAB_WEBHOOK_RETRY_BASE_SECONDS = 30
    with Receiver([500, 503, 500, 200]) as receiver:
        webhooks.webhook_create(project=project, url=receiver.url, events=["export.ready"], secret=SECRET)
        [delivery] = webhooks.webhook_event_emit(project=project, event="export.ready", data={"export": 1})
        first = webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
        assert (first.status, first.attempts, first.response_status) == (DeliveryStatus.RETRYING, 1, 500)
        assert "HTTP 500" in first.error
        # Not yet due: a duplicate message arriving early sends nothing.
        assert webhooks.webhook_delivery_attempt(delivery_id=delivery.pk) is None
        assert len(receiver.requests) == 1
        assert [webhooks.retry_delay(n) for n in (1, 2, 3)] == [30, 60, 120]
        for _ in range(2):
            WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=None)
            last = webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
        assert (last.status, last.attempts, last.response_status) == (DeliveryStatus.FAILED, 3, 500)
        # Given up: a rerun of the task is a no-op.
        assert webhooks.webhook_delivery_attempt(delivery_id=delivery.pk) is None
    assert len(receiver.requests) == 3


@pytest.mark.django_db
def test_private_address_is_checked_again_at_send_time(project, allow_private):
    with Receiver([200]) as receiver:
        webhooks.webhook_create(project=project, url=receiver.url, events=["job.finished"], secret=SECRET)
        [delivery] = webhooks.webhook_event_emit(project=project, event="job.finished", data={})
        allow_private.SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE = False
        result = webhooks.webhook_delivery_attempt(delivery_id=delivery.pk)
    assert result.status == DeliveryStatus.FAILED
    assert "private or loopback" in result.error
    assert receiver.requests == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_retries_a_500_until_the_receiver_accepts(
    project, admin_user, api_client_for, allow_private, settings
):
    settings.SYNTHLAB_WEBHOOK_RETRY_BASE_SECONDS = 0.2
    with (
        Receiver([500, 500, 200]) as receiver,
        start_worker(
            celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING"
        ),
    ):
        client = api_client_for(admin_user)
        hook_id = client.post(
            f"/api/v1/projects/{project.pk}/webhooks/",
            {"url": receiver.url, "events": ["task.completed"], "secret": SECRET},
            format="json",
        ).json()["id"]
        # Emitted inside a committed transaction, queued on commit, sent by the worker.
        from django.db import transaction

        with transaction.atomic():
            webhooks.webhook_event_emit(project=project, event="task.completed", data={"task": 1})
        delivery = WebhookDelivery.objects.get()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            delivery.refresh_from_db()
            if delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED):
                break
            time.sleep(0.1)
        assert (delivery.status, delivery.attempts, delivery.response_status) == (
            DeliveryStatus.SUCCEEDED,
            3,
            200,
        )
        assert [r["headers"]["X-SynthLab-Delivery"] for r in receiver.requests] == [str(delivery.pk)] * 3
        assert all(_verify(SECRET, r) for r in receiver.requests)

        # The log shows it; re-sending from the API makes a new delivery, sent by the worker.
        log = client.get(f"/api/v1/projects/{project.pk}/webhooks/{hook_id}/deliveries/").json()
        assert [(row["status"], row["attempts"]) for row in log["results"]] == [("succeeded", 3)]
        resent = client.post(
            f"/api/v1/projects/{project.pk}/webhooks/{hook_id}/deliveries/{delivery.pk}/resend/"
        )
        assert resent.status_code == 202
        fresh_id = resent.json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if WebhookDelivery.objects.get(pk=fresh_id).status == DeliveryStatus.SUCCEEDED:
                break
            time.sleep(0.1)
        assert WebhookDelivery.objects.get(pk=fresh_id).status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 4
    assert json.loads(receiver.requests[-1]["body"])["data"] == {"task": 1}


@pytest.mark.django_db
def test_a_finished_or_cancelled_generation_job_emits_job_finished(project, allow_private):
    from annotation.models import Item
    from generation import services as generation_services
    from generation.backends import backends_close

    hook = webhooks.webhook_create(
        project=project, url="http://127.0.0.1:9/jobs", events=["job.finished"], secret=SECRET
    )
    project.model_settings = {"backend": "locmem", "scores": {"positive": -0.1, "negative": -3.0}}
    project.save()
    Item.objects.create(project=project, text="a fine day")
    try:
        job = generation_services.job_create_local(
            project=project, recipe="weak_label", params={}, items=None
        )
        job = generation_services.job_run(job_id=job.pk)
    finally:
        backends_close()
    [delivery] = hook.deliveries.all()
    assert delivery.event == "job.finished"
    assert delivery.payload["job"] == job.pk and delivery.payload["status"] == job.status == "succeeded"
    assert delivery.payload["created"]["candidates"] == 1

    queued = generation_services.job_create_local(project=project, recipe="weak_label", params={}, items=None)
    generation_services.job_cancel(job=queued)
    assert [d.payload["status"] for d in hook.deliveries.order_by("id")] == ["succeeded", "cancelled"]
