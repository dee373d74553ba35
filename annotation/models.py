"""Projects, items, candidates, review tasks, annotations and exports.

Rules the data must keep live in the database as constraints, not only in forms: one external id
per project, one annotation per reviewer per task, one annotation per client_id, ratings 1-5, a
task never holding more annotations than its overlap.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class TaskType(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    NER = "ner", "Named entities"
    QA = "qa", "Question answering"
    INSTRUCTION = "instruction", "Instruction following"


class ReviewMode(models.TextChoices):
    RATE = "rate", "Rate 1-5"
    COMPARE = "compare", "Compare two"
    EDIT = "edit", "Edit"
    LABEL = "label", "Correct labels"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    REVIEWER = "reviewer", "Reviewer"
    ANNOTATOR = "annotator", "Annotator"


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    EVAL = "eval", "Eval"


class CompareChoice(models.TextChoices):
    A = "a", "A is better"
    B = "b", "B is better"
    TIE = "tie", "Tie"
    BOTH_BAD = "both_bad", "Both bad"


DEFAULT_RUBRIC = {
    "1": "Wrong, harmful or off-topic.",
    "2": "Addresses part of the request, with clear errors or gaps.",
    "3": "Helpful but incomplete or in the wrong voice.",
    "4": "Correct and complete, with minor room to improve.",
    "5": "Excellent: correct, complete, well written.",
}


def default_rubric():
    return dict(DEFAULT_RUBRIC)


def default_modes():
    return [ReviewMode.RATE.value]


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    task_type = models.CharField(max_length=20, choices=TaskType.choices, default=TaskType.INSTRUCTION)
    labels = models.JSONField(default=list, blank=True)
    modes = models.JSONField(default=default_modes)
    overlap = models.PositiveSmallIntegerField(default=1)
    guidelines = models.TextField(blank=True)
    rubric = models.JSONField(default=default_rubric, blank=True)
    model_settings = models.JSONField(default=dict, blank=True)
    allow_overlapping_spans = models.BooleanField(default=False)
    # Recipe, gold, adjudication and routing settings that later features add; one JSON object so
    # new knobs need no migration of the core table.
    options = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_at_least_one"),
            models.CheckConstraint(
                condition=Q(task_type__in=TaskType.values), name="project_task_type_valid"
            ),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("annotation:project_detail", kwargs={"project_id": self.pk})


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)
    # An annotator can be paused from the queue (e.g. gold accuracy below the project's threshold).
    paused = models.BooleanField(default=False)
    paused_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_one_per_user"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.project}"


class ItemStatus(models.TextChoices):
    NEW = "new", "New"
    IN_REVIEW = "in_review", "In review"
    DONE = "done", "Done"


class Item(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255, null=True, blank=True)
    text = models.TextField(blank=True)
    prompt = models.TextField(blank=True)
    messages = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.TRAIN)
    # Labels, spans or an answer that came with the item (imported references, gold answers).
    reference = models.JSONField(null=True, blank=True)
    is_gold = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=ItemStatus.choices, default=ItemStatus.NEW)
    # sha256 of the normalised prompt/text: finds eval items leaking into training exports.
    content_hash = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"],
                condition=Q(external_id__isnull=False),
                name="item_external_id_unique_per_project",
            ),
            models.CheckConstraint(condition=Q(split__in=Split.values), name="item_split_valid"),
        ]
        indexes = [
            models.Index(fields=["project", "split", "status"], name="item_project_split_status"),
            # An export's items in id order, from the index alone: where a two-process export
            # splits them (the OFFSET read 44 ms for 200,000 items through the primary key and the
            # table, 11 ms here).
            models.Index(fields=["project", "split", "id"], name="item_project_split_id"),
        ]

    def __str__(self):
        return self.external_id or f"item {self.pk}"

    @property
    def display_text(self) -> str:
        """The input as one string: text, else prompt, else the last user message."""
        if self.text:
            return self.text
        if self.prompt:
            return self.prompt
        for message in reversed(self.messages or []):
            if message.get("role") == "user":
                return message.get("content", "")
        return ""


class CandidateSource(models.TextChoices):
    MODEL = "model", "Model"
    HUMAN = "human", "Human"
    IMPORT = "import", "Imported"
    EXTERNAL = "external", "External generator"


class Candidate(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="candidates")
    text = models.TextField(blank=True)
    # A label (str), labels (list of str) or spans (list of {start, end, label}).
    label = models.JSONField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=CandidateSource.choices, default=CandidateSource.MODEL)
    model = models.CharField(max_length=255, blank=True)
    recipe = models.CharField(max_length=64, blank=True)
    # backend, model revision, prompt template and version, sampling parameters, seed.
    provenance = models.JSONField(default=dict, blank=True)
    scores = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A generator's key for this output (item, recipe, sample index): a rerun never duplicates.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False),
                name="candidate_dedupe_key_unique_per_item",
            ),
        ]

    def __str__(self):
        return f"candidate {self.pk} of {self.item_id}"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"


# Open tasks nobody answered yet, and open tasks with some answers: the review queue's two walks.
OPEN_FRESH = Q(status=TaskStatus.OPEN, annotation_count=0)
OPEN_STARTED = Q(status=TaskStatus.OPEN, annotation_count__gt=0)


class ReviewTask(models.Model):
    """One question put to `overlap` different reviewers about one item.

    rate / edit / label: `candidate_a` is the candidate shown (label may have none).
    compare: `candidate_a` and `candidate_b` are stored in the order shown, randomised at creation.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="tasks")
    mode = models.CharField(max_length=10, choices=ReviewMode.choices)
    candidate_a = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks_as_a"
    )
    candidate_b = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.CASCADE, related_name="tasks_as_b"
    )
    # Identity of the question within the project ("rate:c12", "compare:c3:c5"): makes creation
    # idempotent when a generation job reruns.
    key = models.CharField(max_length=100)
    overlap = models.PositiveSmallIntegerField(default=1)
    annotation_count = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    is_gold = models.BooleanField(default=False)
    # Lower comes first; gold and adjudication features adjust it.
    priority = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="task_key_unique_per_project"),
            models.CheckConstraint(condition=Q(overlap__gte=1), name="task_overlap_at_least_one"),
            models.CheckConstraint(
                condition=Q(annotation_count__lte=models.F("overlap")), name="task_never_over_overlap"
            ),
            models.CheckConstraint(condition=Q(mode__in=ReviewMode.values), name="task_mode_valid"),
            models.CheckConstraint(
                condition=~Q(mode="compare") | (Q(candidate_a__isnull=False) & Q(candidate_b__isnull=False)),
                name="task_compare_has_two_candidates",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "mode", "status", "priority", "id"], name="task_queue"),
            # The claim's walks (services/review.py, _claim_query): open tasks nobody answered yet,
            # in queue order, so the first walk never passes over tasks this annotator answered;
            # open tasks with some answers (what overlap leaves open), in queue order and by id.
            models.Index(
                fields=["project", "mode", "priority", "id"], condition=OPEN_FRESH, name="task_queue_fresh"
            ),
            models.Index(
                fields=["project", "mode", "priority", "id"],
                condition=OPEN_STARTED,
                name="task_queue_started",
            ),
            models.Index(fields=["project", "mode", "id"], condition=OPEN_STARTED, name="task_started_by_id"),
        ]

    def __str__(self):
        return f"{self.mode} task {self.pk}"


class TaskLease(models.Model):
    """A slot of a task held by one reviewer until `expires_at`."""

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="leases")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="task_leases")
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="lease_one_per_user_per_task")]

    def __str__(self):
        return f"lease of task {self.task_id} to {self.user_id}"


class TaskSkip(models.Model):
    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="skips")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="task_skips")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="skip_one_per_user_per_task")]

    def __str__(self):
        return f"skip of task {self.task_id} by {self.user_id}"


class Annotation(models.Model):
    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )
    mode = models.CharField(max_length=10, choices=ReviewMode.choices)
    value = models.JSONField()
    # Denormalised from `value` so the database itself checks them and queries can aggregate.
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    choice = models.CharField(max_length=10, choices=CompareChoice.choices, null=True, blank=True)
    client_id = models.UUIDField(default=uuid.uuid4, unique=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # edit: the human candidate the edit became.
    result_candidate = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "annotator"], name="annotation_one_per_reviewer_per_task"
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="annotation_rating_1_to_5",
            ),
            models.CheckConstraint(
                condition=Q(choice__isnull=True) | Q(choice__in=CompareChoice.values),
                name="annotation_choice_valid",
            ),
            models.CheckConstraint(
                condition=~Q(mode="rate") | Q(rating__isnull=False), name="annotation_rate_has_rating"
            ),
            models.CheckConstraint(
                condition=~Q(mode="compare") | Q(choice__isnull=False), name="annotation_compare_has_choice"
            ),
        ]
        # An annotator's answers by task id: the claim reads them as one range for its hashed
        # anti-join instead of probing (task, annotator) once per task.
        indexes = [models.Index(fields=["annotator", "task"], name="annotation_annotator_task")]
        # On PostgreSQL also annotation_task_answers, (task) INCLUDE (choice, rating, annotator), for
        # exports: made by migration 0004, not declared here (SQLite has no covering indexes).

    def __str__(self):
        return f"annotation {self.pk} on task {self.task_id}"


class AnnotationDraft(models.Model):
    """What a reviewer typed but has not submitted yet, restored when they come back."""

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="drafts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    value = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="draft_one_per_user_per_task")]

    def __str__(self):
        return f"draft of task {self.task_id} by {self.user_id}"


class ExportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Export(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=30)
    file_type = models.CharField(max_length=20, default="jsonl")
    filters = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    row_count = models.PositiveIntegerField(default=0)
    # Rows per rule and split, eval prompts removed, rows dropped and why.
    counts = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.format} export {self.pk}"


# --- Team workflow and data quality ------------------------------------------------------------


class ItemAssignment(models.Model):
    """An item given to named annotators. An item with assignments is served only to them; an item
    without any goes to everyone."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="item_assignments"
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="assignment_one_per_user_per_item")
        ]

    def __str__(self):
        return f"item {self.item_id} assigned to {self.user_id}"


class AdjudicationDecision(models.TextChoices):
    FINAL = "final", "Final answer set"
    SENT_BACK = "sent_back", "Sent back for more annotations"


class Adjudication(models.Model):
    """A reviewer's ruling on a task: the final answer (preferred by exports), or a request for more
    annotations. One per task; a later ruling replaces the earlier one."""

    task = models.OneToOneField(ReviewTask, on_delete=models.CASCADE, related_name="adjudication")
    decision = models.CharField(max_length=20, choices=AdjudicationDecision.choices)
    value = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # How many annotations the task had when ruled on; a sent-back task returns to the
    # adjudication queue once it has more.
    annotation_count = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decision__in=AdjudicationDecision.values), name="adjudication_decision_valid"
            ),
            models.CheckConstraint(
                condition=~Q(decision="final") | Q(value__isnull=False), name="adjudication_final_has_value"
            ),
        ]

    def __str__(self):
        return f"adjudication of task {self.task_id}: {self.decision}"


class AnnotatorPause(models.Model):
    """Why and when an annotator was paused from the queue, and who resumed them. Gold accuracy
    that decides a pause counts only answers given since the last resume."""

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="pauses")
    reason = models.TextField()
    gold_correct = models.PositiveIntegerField(default=0)
    gold_answered = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"pause of {self.membership_id} at {self.created_at:%Y-%m-%d %H:%M}"


class WebhookEvent(models.TextChoices):
    TASK_COMPLETED = "task.completed", "A review task got all its annotations"
    ANNOTATION_CREATED = "annotation.created", "An annotation was submitted"
    JOB_FINISHED = "job.finished", "A generation job finished"
    EXPORT_READY = "export.ready", "An export file is ready"
    ANNOTATOR_PAUSED = "annotator.paused", "An annotator was paused for low gold accuracy"


class Webhook(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    # Signs each delivery (HMAC-SHA256 of the body); never shown back after creation.
    secret = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"webhook {self.pk} → {self.url}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Failed, will retry"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=50)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            )
        ]

    def __str__(self):
        return f"{self.event} delivery {self.pk} ({self.status})"
