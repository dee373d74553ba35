"""Pages of the generation app: model settings and test, job list, start form, job detail."""

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.models import Role
from annotation.selectors import role_at_least
from annotation.views.base import flash_error, form_errors_from, project_view
from synthlab.errors import Forbidden, NotFound, SynthLabError

from . import selectors, services
from .forms import JobForm, ModelSettingsForm, ProbeForm
from .prompts import prompt_get
from .recipes import RECIPES


def job_view(min_role: str = Role.ANNOTATOR):
    """Login required; loads the job for a member of its project (404 otherwise, 403 below min_role)."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, job_id, *args, **kwargs):
            try:
                job = selectors.job_get(user=request.user, job_id=job_id, min_role=min_role)
            except NotFound:
                raise Http404("No such job.") from None
            except Forbidden as exc:
                return HttpResponseForbidden(render(request, "403.html", {"message": exc.message}).content)
            return view(request, job, *args, **kwargs)

        return wrapper

    return decorator


def live_websocket() -> bool:
    """Whether progress can be pushed: only with a channel layer shared between processes. The
    in-memory layer of the embedded default does not reach the worker, so the page polls."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return bool(backend) and not backend.endswith("InMemoryChannelLayer")


# Model settings and test ----------------------------------------------------------------------------


@project_view(min_role=Role.ADMIN)
def model_settings(request, project):
    form = ModelSettingsForm(
        request.POST or None, initial=ModelSettingsForm.initial_from(project.model_settings)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.model_settings_update(project=project, data=form.to_service_data())
        except SynthLabError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, "Model settings saved.")
            return redirect("generation:model_settings", project_id=project.pk)
    probe = project.model_probes.order_by("-created_at", "-id").first()
    return render(
        request,
        "generation/model_settings.html",
        {
            "project": project,
            "form": form,
            "probe_form": ProbeForm(),
            "probe": probe,
            "has_api_key": bool((project.model_settings or {}).get("api_key")),
        },
    )


@require_POST
@project_view(min_role=Role.ADMIN)
def model_test(request, project):
    form = ProbeForm(request.POST)
    probe = None
    if form.is_valid():
        try:
            probe = services.probe_create(
                project=project, user=request.user, prompt=form.cleaned_data["prompt"]
            )
        except SynthLabError as exc:
            flash_error(request, exc)
    else:
        messages.error(request, "Write a prompt (up to 4000 characters) to test the model.")
    if request.htmx:
        return render(request, "generation/model_settings.html#probe", {"project": project, "probe": probe})
    return redirect("generation:model_settings", project_id=project.pk)


@project_view(min_role=Role.ADMIN)
def model_test_detail(request, project, probe_id):
    try:
        probe = selectors.probe_get(project=project, probe_id=probe_id)
    except NotFound:
        raise Http404("No such model test.") from None
    return render(request, "generation/model_settings.html#probe", {"project": project, "probe": probe})


# Jobs ---------------------------------------------------------------------------------------------


@project_view()
def job_list(request, project):
    page = Paginator(selectors.job_list(project=project), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "generation/job_list.html",
        {"project": project, "page": page, "is_admin": role_at_least(project.current_role, Role.ADMIN)},
    )


@project_view(min_role=Role.ADMIN)
def job_create(request, project):
    form = JobForm(request.POST or None, initial={"recipe": "weak_label", "scope": "all"})
    if request.method == "POST" and form.is_valid():
        try:
            job = services.job_create(project=project, user=request.user, **form.to_service_data())
        except SynthLabError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, f"Job {job.pk} queued: {job.progress_total} items.")
            return redirect(job)
    recipes = []
    for recipe in RECIPES.values():
        prompts = []
        for name in recipe.prompt_names(project):
            try:
                prompts.append(prompt_get(name=name, project=project))
            except SynthLabError as exc:
                prompts.append({"name": name, "error": exc.message})
        recipes.append({"recipe": recipe, "prompts": prompts})
    return render(request, "generation/job_form.html", {"project": project, "form": form, "recipes": recipes})


@job_view()
def job_detail(request, job):
    progress = services.job_progress(job)
    context = {
        "job": job,
        "project": job.project,
        "p": progress,
        "ws": live_websocket(),
        "is_admin": role_at_least(job.project.current_role, Role.ADMIN),
    }
    partial = request.GET.get("partial")
    if request.htmx and partial == "progress":
        return render(request, "generation/job_detail.html#progress", context)
    context["failures"] = Paginator(selectors.job_failures(job=job), 50).get_page(request.GET.get("page"))
    if request.htmx and partial == "failures":
        return render(request, "generation/job_detail.html#failures", context)
    return render(request, "generation/job_detail.html", context)


@require_POST
@job_view(min_role=Role.ADMIN)
def job_cancel(request, job):
    services.job_cancel(job=job)
    messages.success(request, f"Job {job.pk} is {job.get_status_display().lower()}.")
    return redirect(reverse("generation:job_detail", kwargs={"job_id": job.pk}))
