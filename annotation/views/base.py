from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import render

from synthlab.errors import Forbidden, NotFound, SynthLabError

from .. import selectors
from ..models import Role


def member_view(load, *, arg: str, min_role: str = Role.ANNOTATOR, not_found: str = "Not found."):
    """Login required; `load(user=, pk=, min_role=)` fetches the object the URL argument `arg` names,
    for a member of its project, and the view gets it instead. Not a member: 404; a member below
    `min_role`: the 403 page."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if arg in kwargs:
                pk = kwargs.pop(arg)
            else:
                pk, *args = args
            try:
                obj = load(user=request.user, pk=pk, min_role=min_role)
            except NotFound:
                raise Http404(not_found) from None
            except Forbidden as exc:
                return HttpResponseForbidden(render(request, "403.html", {"message": exc.message}).content)
            return view(request, obj, *args, **kwargs)

        return wrapper

    return decorator


def project_view(min_role: str = Role.ANNOTATOR):
    """A page about one project (URL argument `project_id`)."""

    def load(*, user, pk, min_role):
        return selectors.project_get(user=user, project_id=pk, min_role=min_role)

    return member_view(load, arg="project_id", min_role=min_role, not_found="No such project.")


def form_errors_from(form, exc: SynthLabError) -> None:
    """Puts a service's validation details onto the matching form fields."""
    placed = False
    for detail in exc.details:
        field = detail.get("field")
        if field in form.fields:
            form.add_error(field, detail.get("message"))
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def flash_error(request, exc: SynthLabError) -> None:
    messages.error(request, exc.message)
