"""Generation jobs, the failures they log, and one-prompt model tests.

A job runs one recipe over a set of items with the project's model, on the `gpu` worker queue.
Its results are Candidates (annotation.models.Candidate, source "model"), each with a dedupe key
(item, recipe, sample index) so a rerun or a redelivered task never stores one twice. What could
not be turned into a candidate is a JobFailure, with the model's raw output kept for the admin.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TERMINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class FailureReason(models.TextChoices):
    TIMEOUT = "timeout", "Timed out"
    UNPARSEABLE = "unparseable", "Unparseable output"
    MODEL_ERROR = "model_error", "Model error"


class GenerationJob(models.Model):
    project = models.ForeignKey(
        "annotation.Project", on_delete=models.CASCADE, related_name="generation_jobs"
    )
    recipe = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    # {"split": "train"|"eval", "without_candidates": bool, "ids": [...], "limit": n}
    item_filter = models.JSONField(default=dict, blank=True)
    # The project's model settings when the job was created, without the API key (read at run time).
    model_settings = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    message = models.TextField(blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # Scope snapshot: only items that existed when the job was created.
    item_id_max = models.BigIntegerField(default=0)
    candidates_created = models.PositiveIntegerField(default=0)
    tasks_created = models.PositiveIntegerField(default=0)
    failures_count = models.PositiveIntegerField(default=0)
    tokens = models.PositiveBigIntegerField(default=0)
    # run_seconds, model_load_seconds, items_per_second, tokens_per_second.
    timings = models.JSONField(default=dict, blank=True)
    # "<host>:<pid>" of the worker process running it, and when it last reported.
    worker = models.CharField(max_length=255, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="job_status_valid"),
            models.CheckConstraint(
                condition=Q(progress_done__lte=models.F("progress_total")), name="job_done_at_most_total"
            ),
        ]
        indexes = [models.Index(fields=["project", "-created_at"], name="job_project_created")]

    def __str__(self):
        return f"{self.recipe} job {self.pk}"

    def get_absolute_url(self):
        return reverse("generation:job_detail", kwargs={"job_id": self.pk})

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def group_name(self) -> str:
        return f"job-{self.pk}"


class JobFailure(models.Model):
    """An item the job could not turn into a candidate, and why. One per item per job."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="failures")
    item = models.ForeignKey("annotation.Item", on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=FailureReason.choices)
    message = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "item"], name="job_failure_one_per_item"),
            models.CheckConstraint(
                condition=Q(reason__in=FailureReason.values), name="job_failure_reason_valid"
            ),
        ]

    def __str__(self):
        return f"{self.reason} on item {self.item_id} in job {self.job_id}"


class ModelProbe(models.Model):
    """The "test the model" button: one prompt, answered by a worker (never in the web request)."""

    project = models.ForeignKey("annotation.Project", on_delete=models.CASCADE, related_name="model_probes")
    prompt = models.TextField()
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    answer = models.TextField(blank=True)
    error = models.TextField(blank=True)
    backend = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=255, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"model test {self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in TERMINAL_STATUSES
