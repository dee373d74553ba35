from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from synthlab.errors import Conflict, NotFound, ValidationFailed

from ..models import Membership, Project, ReviewMode, Role, TaskType

User = get_user_model()

PROJECT_FIELDS = (
    "name",
    "description",
    "task_type",
    "labels",
    "modes",
    "overlap",
    "guidelines",
    "rubric",
    "model_settings",
    "allow_overlapping_spans",
    "options",
)


def _unique_slug(name: str, *, exclude_id: int | None = None) -> str:
    base = slugify(name)[:180] or "project"
    slug, n = base, 2
    while Project.objects.filter(slug=slug).exclude(pk=exclude_id).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def project_validate(*, data: dict) -> dict:
    """Checks project settings; answers the cleaned values or raises ValidationFailed with details."""
    details = []
    clean = {}
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name:
            details.append({"field": "name", "message": "Give the project a name."})
        elif len(name) > 200:
            details.append({"field": "name", "message": "Keep the name under 200 characters."})
        clean["name"] = name
    if "task_type" in data:
        if data["task_type"] not in TaskType.values:
            details.append({"field": "task_type", "message": f"Choose one of: {', '.join(TaskType.values)}."})
        clean["task_type"] = data["task_type"]
    if "labels" in data:
        labels = data["labels"] or []
        if isinstance(labels, str):
            labels = [part.strip() for part in labels.replace("\n", ",").split(",")]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            details.append({"field": "labels", "message": "Labels must be a list of strings."})
        else:
            labels = [x.strip() for x in labels if x.strip()]
            if len(set(labels)) != len(labels):
                details.append({"field": "labels", "message": "Each label may appear only once."})
            clean["labels"] = labels
    if "modes" in data:
        modes = data["modes"] or []
        if isinstance(modes, str):
            modes = [modes]
        bad = [m for m in modes if m not in ReviewMode.values]
        if bad or not modes:
            details.append(
                {"field": "modes", "message": f"Choose one or more of: {', '.join(ReviewMode.values)}."}
            )
        clean["modes"] = list(dict.fromkeys(modes))
    if "overlap" in data:
        try:
            overlap = int(data["overlap"])
        except (TypeError, ValueError):
            overlap = 0
        if overlap < 1 or overlap > 50:
            details.append({"field": "overlap", "message": "Overlap is a whole number from 1 to 50."})
        clean["overlap"] = overlap
    if "rubric" in data:
        rubric = data["rubric"] or {}
        if not isinstance(rubric, dict) or not set(rubric) <= {"1", "2", "3", "4", "5"}:
            details.append({"field": "rubric", "message": 'The rubric maps "1".."5" to a description.'})
        else:
            clean["rubric"] = {k: str(v) for k, v in rubric.items()}
    for key in ("guidelines", "description"):
        if key in data:
            clean[key] = str(data[key] or "")
    for key in ("model_settings", "options"):
        if key in data:
            if not isinstance(data[key] or {}, dict):
                details.append({"field": key, "message": "Must be an object."})
            clean[key] = data[key] or {}
    if "allow_overlapping_spans" in data:
        clean["allow_overlapping_spans"] = bool(data["allow_overlapping_spans"])
    task_type = clean.get("task_type")
    if task_type in (TaskType.CLASSIFICATION, TaskType.NER) and "labels" in clean and not clean["labels"]:
        details.append({"field": "labels", "message": f"A {task_type} project needs at least one label."})
    if details:
        raise ValidationFailed(details[0]["message"], details=details)
    return clean


@transaction.atomic
def project_create(*, user, data: dict) -> Project:
    data = {"labels": [], "modes": [ReviewMode.RATE], "overlap": 1, **data}
    clean = project_validate(data=data)
    if "name" not in clean:
        raise ValidationFailed(
            "Give the project a name.", details=[{"field": "name", "message": "Required."}]
        )
    project = Project.objects.create(slug=_unique_slug(clean["name"]), created_by=user, **clean)
    Membership.objects.create(project=project, user=user, role=Role.ADMIN)
    return project


@transaction.atomic
def project_update(*, project: Project, data: dict) -> Project:
    data = {k: v for k, v in data.items() if k in PROJECT_FIELDS}
    clean = project_validate(data={"task_type": project.task_type, **data})
    if clean.get("task_type") in (TaskType.CLASSIFICATION, TaskType.NER) and not clean.get(
        "labels", project.labels
    ):
        raise ValidationFailed(
            "This project type needs at least one label.",
            details=[{"field": "labels", "message": "Required."}],
        )
    for key, value in clean.items():
        setattr(project, key, value)
    project.save()
    return project


def project_delete(*, project: Project) -> None:
    project.delete()


@transaction.atomic
def membership_add(*, project: Project, username: str, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationFailed(
            f"Role must be one of: {', '.join(Role.values)}.",
            details=[{"field": "role", "message": "Invalid."}],
        )
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationFailed(
            f'No user named "{username}". Create the account first.',
            details=[{"field": "username", "message": "Unknown user."}],
        )
    membership, created = Membership.objects.get_or_create(
        project=project, user=user, defaults={"role": role}
    )
    if not created and membership.role != role:
        _guard_last_admin(project=project, membership=membership, new_role=role)
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def _guard_last_admin(*, project: Project, membership: Membership, new_role: str | None) -> None:
    if membership.role == Role.ADMIN and new_role != Role.ADMIN:
        admins = Membership.objects.filter(project=project, role=Role.ADMIN).count()
        if admins <= 1:
            raise Conflict("A project keeps at least one admin; add another admin first.")


@transaction.atomic
def membership_remove(*, project: Project, username: str) -> None:
    membership = Membership.objects.filter(project=project, user__username=username).first()
    if membership is None:
        raise NotFound(f'"{username}" is not a member of this project.')
    _guard_last_admin(project=project, membership=membership, new_role=None)
    membership.delete()


def user_create(*, username: str, password: str, email: str = "", is_staff: bool = False):
    try:
        return User.objects.create_user(username=username, password=password, email=email, is_staff=is_staff)
    except IntegrityError:
        raise Conflict(f'The username "{username}" is taken.') from None
