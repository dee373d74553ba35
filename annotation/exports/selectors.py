"""Reads of exports. An export of a project the user is not a member of is reported as not found."""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from synthlab.errors import NotFound

from ..models import Candidate, Export, Project


def export_list(*, project: Project) -> QuerySet[Export]:
    return Export.objects.filter(project=project).select_related("created_by").order_by("-created_at", "-id")


def export_get(*, user: AbstractBaseUser, export_id) -> Export:
    """The export if `user` is a member of its project (with `project.current_role` set)."""
    try:
        export_id = int(export_id)
    except (TypeError, ValueError):
        raise NotFound("No such export.") from None
    if not user.is_authenticated:
        raise NotFound("No such export.")
    export = (
        Export.objects.select_related("project", "created_by")
        .filter(pk=export_id, project__memberships__user=user)
        .first()
    )
    if export is None:
        raise NotFound("No such export.")
    export.project.current_role = export.project.memberships.get(user=user).role
    return export


def export_file(*, export: Export) -> Path | None:
    """The export's file on disk, if it is there (and inside EXPORT_DIR)."""
    if not export.file_path:
        return None
    root = Path(settings.EXPORT_DIR).resolve()
    path = (root / export.file_path).resolve()
    if root not in path.parents or not path.is_file():
        return None
    return path


def candidate_models(*, project: Project) -> list[str]:
    return sorted(
        m
        for m in Candidate.objects.filter(item__project=project)
        .order_by()
        .values_list("model", flat=True)
        .distinct()
        if m
    )


def candidate_recipes(*, project: Project) -> list[str]:
    return sorted(
        r
        for r in Candidate.objects.filter(item__project=project)
        .order_by()
        .values_list("recipe", flat=True)
        .distinct()
        if r
    )
