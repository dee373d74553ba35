from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import render

from synthlab.errors import Forbidden, NotFound, SynthLabError

from .. import selectors
from ..models import Role


def project_view(min_role: str = Role.ANNOTATOR):
    """Login required; loads `project` for the user (404 when not a member, 403 below `min_role`)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, project_id, *args, **kwargs):
            try:
                project = selectors.project_get(user=request.user, project_id=project_id, min_role=min_role)
            except NotFound:
                raise Http404("No such project.") from None
            except Forbidden as exc:
                return HttpResponseForbidden(render(request, "403.html", {"message": exc.message}).content)
            return view(request, project, *args, **kwargs)

        return wrapper

    return decorator


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
