"""Reads. Each returns a queryset or an object the caller may see; a project the user is not a
member of is reported as not found, never as forbidden."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet

from synthlab import prepared, rawrows
from synthlab.errors import Forbidden, NotFound

from .models import Candidate, Item, Membership, Project, Role

ROLE_RANK = {Role.ANNOTATOR: 0, Role.REVIEWER: 1, Role.ADMIN: 2}


def project_list(*, user: AbstractBaseUser) -> QuerySet[Project]:
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user).distinct()


def membership_get(*, project: Project, user: AbstractBaseUser) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(project=project, user=user).first()


def project_get(*, user: AbstractBaseUser, project_id, min_role: str = Role.ANNOTATOR) -> Project:
    """The project if `user` belongs to it with at least `min_role`.

    Not a member (or no such project): NotFound. A member below `min_role`: Forbidden.
    """
    try:
        project_id = int(project_id)
    except (TypeError, ValueError):
        raise NotFound("No such project.") from None
    found = None
    if user.is_authenticated and rawrows.id_in_range(project_id):
        found = _member_project(project_id=project_id, user_id=user.pk)
    if found is None:
        raise NotFound("No such project.")
    role, project = found
    if ROLE_RANK[Role(role)] < ROLE_RANK[Role(min_role)]:
        raise Forbidden(f"This needs the {min_role} role in the project; you are {role}.")
    project.current_role = role
    return project


def _member_project(*, project_id: int, user_id: int) -> tuple[str, Project] | None:
    """(role, project) of the user's membership, in one hand-written statement: every project page
    and API call starts here, and the ORM's join costs more CPU to build than to run."""
    quote = connection.ops.quote_name
    sql = (
        f"SELECT m.role, {rawrows.columns(Project, 'p')} FROM {quote(Membership._meta.db_table)} m"
        f" JOIN {quote(Project._meta.db_table)} p ON p.id = m.project_id"
        " WHERE m.project_id = %s AND m.user_id = %s ORDER BY m.id LIMIT 1"
    )
    with prepared.cursor() as cursor:
        cursor.execute(sql, [project_id, user_id])
        row = cursor.fetchone()
    return None if row is None else (row[0], rawrows.instance(Project, "p", row, 1))


def role_at_least(role: str, min_role: str) -> bool:
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(min_role)]


def item_list(
    *, project: Project, split: str | None = None, status: str | None = None, search: str | None = None
):
    items = Item.objects.filter(project=project)
    if split:
        items = items.filter(split=split)
    if status:
        items = items.filter(status=status)
    if search:
        from django.db.models import Q

        items = items.filter(
            Q(text__icontains=search) | Q(prompt__icontains=search) | Q(external_id__icontains=search)
        )
    return items.order_by("id")


def item_get(*, project: Project, item_id) -> Item:
    try:
        return Item.objects.get(project=project, pk=int(item_id))
    except (Item.DoesNotExist, TypeError, ValueError):
        raise NotFound("No such item in this project.") from None


def candidate_list(*, item: Item) -> QuerySet[Candidate]:
    return item.candidates.order_by("id")


def candidates_visible(*, project: Project, user: AbstractBaseUser) -> QuerySet[Candidate]:
    """Candidates the user may see. Annotators are blind to each other: a human candidate (an
    annotator's edit) is shown only to the annotator who wrote it; reviewers and admins see all."""
    from django.db.models import Q

    from .models import CandidateSource

    candidates = Candidate.objects.order_by("id")
    if role_at_least(getattr(project, "current_role", None) or Role.ANNOTATOR, Role.REVIEWER):
        return candidates
    return candidates.filter(~Q(source=CandidateSource.HUMAN) | Q(created_by_id=user.pk))


def candidates_prefetch(*, project: Project, user: AbstractBaseUser):
    """A Prefetch of `item.candidates` limited to what the user may see."""
    from django.db.models import Prefetch

    return Prefetch("candidates", queryset=candidates_visible(project=project, user=user))
