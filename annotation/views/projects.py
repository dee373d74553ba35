from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from synthlab.errors import SynthLabError

from .. import selectors
from ..forms import MemberForm, ProjectForm
from ..models import Annotation, Role, TaskStatus
from ..services import projects as project_services
from .base import flash_error, form_errors_from, project_view


@login_required
def project_list(request):
    projects = selectors.project_list(user=request.user).order_by("-created_at")
    roles = dict(request.user.memberships.values_list("project_id", "role"))
    rows = [(p, roles.get(p.pk)) for p in projects]
    return render(request, "annotation/project_list.html", {"rows": rows})


@login_required
def project_create(request):
    form = ProjectForm(
        request.POST or None, initial={"modes": ["rate"], "overlap": 1, "task_type": "instruction"}
    )
    if request.method == "POST" and form.is_valid():
        try:
            project = project_services.project_create(user=request.user, data=form.to_service_data())
        except SynthLabError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, f"Project “{project.name}” created. Import items to start.")
            return redirect(project)
    return render(request, "annotation/project_form.html", {"form": form, "creating": True})


@project_view()
def project_detail(request, project):
    items = selectors.item_list(project=project, split=request.GET.get("split"), search=request.GET.get("q"))
    visible = selectors.candidates_prefetch(project=project, user=request.user)
    page = Paginator(items.prefetch_related(visible), 25).get_page(request.GET.get("page"))
    tasks = project.tasks
    context = {
        "project": project,
        "is_admin": selectors.role_at_least(project.current_role, Role.ADMIN),
        "is_reviewer": selectors.role_at_least(project.current_role, Role.REVIEWER),
        # Admins are told here when an annotator was paused (e.g. for low gold accuracy).
        "paused_members": list(
            project.memberships.filter(paused=True).select_related("user").order_by("user__username")
        )
        if selectors.role_at_least(project.current_role, Role.ADMIN)
        else [],
        "page": page,
        "counts": {
            "items": project.items.count(),
            "tasks_open": tasks.filter(status=TaskStatus.OPEN).count(),
            "tasks_done": tasks.filter(status=TaskStatus.DONE).count(),
            "annotations": Annotation.objects.filter(task__project=project).count(),
        },
    }
    if request.htmx and request.GET.get("partial") == "items":
        return render(request, "annotation/project_detail.html#items", context)
    return render(request, "annotation/project_detail.html", context)


@project_view(min_role=Role.ADMIN)
def project_settings(request, project):
    form = ProjectForm(request.POST or None, initial=ProjectForm.initial_from(project))
    if request.method == "POST" and form.is_valid():
        try:
            project_services.project_update(project=project, data=form.to_service_data())
        except SynthLabError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect(project)
    return render(
        request, "annotation/project_form.html", {"form": form, "project": project, "creating": False}
    )


@project_view(min_role=Role.ADMIN)
def project_members(request, project):
    form = MemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            project_services.membership_add(project=project, **form.cleaned_data)
        except SynthLabError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']}.")
            return redirect("annotation:project_members", project_id=project.pk)
    members = project.memberships.select_related("user").order_by("user__username")
    return render(
        request, "annotation/project_members.html", {"project": project, "form": form, "members": members}
    )


@require_POST
@project_view(min_role=Role.ADMIN)
def project_member_remove(request, project, username):
    try:
        project_services.membership_remove(project=project, username=username)
    except SynthLabError as exc:
        flash_error(request, exc)
    else:
        messages.success(request, f"{username} was removed from the project.")
    return redirect("annotation:project_members", project_id=project.pk)
