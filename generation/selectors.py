"""Reads for generation: jobs a user may see, the items a job covers, what is left to do."""

from django.db.models import Exists, OuterRef, QuerySet

from annotation.models import Candidate, Item, Project, Role
from annotation.selectors import project_get
from synthlab.errors import NotFound

from .models import GenerationJob, JobFailure, ModelProbe


def job_get(*, user, job_id, min_role: str = Role.ANNOTATOR) -> GenerationJob:
    """The job if `user` is a member of its project (NotFound otherwise; Forbidden below min_role)."""
    try:
        job = GenerationJob.objects.select_related("project", "created_by").get(pk=int(job_id))
    except (GenerationJob.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such job.") from None
    try:
        job.project = project_get(user=user, project_id=job.project_id, min_role=min_role)
    except NotFound:
        raise NotFound("No such job.") from None
    return job


def job_list(*, project: Project) -> QuerySet[GenerationJob]:
    return (
        GenerationJob.objects.filter(project=project)
        .select_related("created_by")
        .order_by("-created_at", "-id")
    )


def probe_get(*, project: Project, probe_id) -> ModelProbe:
    try:
        return ModelProbe.objects.get(project=project, pk=int(probe_id))
    except (ModelProbe.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such model test.") from None


def items_in_scope(
    *, project: Project, item_filter: dict, id_max: int | None = None, before=None
) -> QuerySet[Item]:
    """Items a job over `item_filter` covers. `id_max` and `before` (the job's creation time) pin
    the scope to what existed when the job started: items imported later, and candidates the job
    itself creates, do not change it."""
    items = Item.objects.filter(project=project)
    if id_max is not None:
        items = items.filter(pk__lte=id_max)
    if item_filter.get("split"):
        items = items.filter(split=item_filter["split"])
    if item_filter.get("ids") is not None:
        items = items.filter(pk__in=item_filter["ids"])
    if item_filter.get("without_candidates"):
        earlier = Candidate.objects.filter(item=OuterRef("pk"))
        if before is not None:
            earlier = earlier.filter(created_at__lt=before)
        items = items.exclude(Exists(earlier))
    return items.order_by("id")


def job_items(*, job: GenerationJob) -> QuerySet[Item]:
    return items_in_scope(
        project=job.project, item_filter=job.item_filter, id_max=job.item_id_max, before=job.created_at
    )


def job_pending(*, job: GenerationJob, dedupe_keys: list[str]) -> dict[int, list[int]]:
    """{item id: sample indexes without a candidate yet}, for the job's items that have no failure
    logged in this job, in item order."""
    item_ids = list(job_items(job=job).values_list("pk", flat=True))
    failed = set(JobFailure.objects.filter(job=job).values_list("item_id", flat=True))
    have: dict[int, set[str]] = {}
    for start in range(0, len(item_ids), 2000):
        chunk = item_ids[start : start + 2000]
        rows = Candidate.objects.filter(item_id__in=chunk, dedupe_key__in=dedupe_keys).values_list(
            "item_id", "dedupe_key"
        )
        for item_id, key in rows:
            have.setdefault(item_id, set()).add(key)
    pending = {}
    for item_id in item_ids:
        if item_id in failed:
            continue
        missing = [n for n, key in enumerate(dedupe_keys) if key not in have.get(item_id, ())]
        if missing:
            pending[item_id] = missing
    return pending


def job_failures(*, job: GenerationJob) -> QuerySet[JobFailure]:
    return job.failures.select_related("item").order_by("id")
