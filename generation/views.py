"""Pages of the generation app: model settings and test, job list, start form, job detail, and the
method inputs (seed tasks, documents, accepted QA pairs to eval, constitution, curator dev set)."""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.models import Role
from annotation.selectors import role_at_least
from annotation.views.base import flash_error, form_errors_from, member_view, project_view
from synthlab.errors import NotFound, SynthLabError, ValidationFailed

from . import method_inputs, selectors, services
from .forms import JobForm, ModelSettingsForm, ProbeForm
from .method_forms import ConstitutionForm, DocumentUploadForm, SeedUploadForm
from .prompts import prompt_get
from .recipes import RECIPES


def job_view(min_role: str = Role.ANNOTATOR):
    """A page about one job (URL argument `job_id`), for members of its project."""

    def load(*, user, pk, min_role):
        return selectors.job_get(user=user, job_id=pk, min_role=min_role)

    return member_view(load, arg="job_id", min_role=min_role, not_found="No such job.")


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


# Method inputs: seed tasks, documents, accepted QA pairs, constitution, curator dev set --------------


def _methods_context(project, **extra) -> dict:
    from annotation.models import Item, Split

    from . import seeds

    return {
        "project": project,
        "seed_form": SeedUploadForm(),
        "document_form": DocumentUploadForm(),
        "seed_count": seeds.seed_items(project).count(),
        "chunk_count": Item.objects.filter(project=project, metadata__has_key="document").count(),
        "eval_chunks": Item.objects.filter(
            project=project, metadata__has_key="document", split=Split.EVAL
        ).count(),
        "custom_constitution": bool((project.options or {}).get("constitution")),
        "curation_pairs": method_inputs.curation_pairs(project).count(),
        **extra,
    }


@project_view(min_role=Role.ADMIN)
def method_inputs_page(request, project):
    return render(request, "generation/method_inputs.html", _methods_context(project))


def _render_inputs_error(request, project, status=400, **forms_):
    context = _methods_context(project, **forms_)
    return render(request, "generation/method_inputs.html", context, status=status)


@require_POST
@project_view(min_role=Role.ADMIN)
def seed_upload(request, project):
    from . import seeds

    form = SeedUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            rows = seeds.seed_rows_parse(form.cleaned_data["file"].read())
            result = seeds.seed_tasks_import(project=project, rows=rows, user=request.user)
        except SynthLabError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(
                request, f"Seed tasks imported: {result['created']} new, {result['updated']} updated."
            )
            return redirect("generation:method_inputs", project_id=project.pk)
    return _render_inputs_error(request, project, seed_form=form)


@require_POST
@project_view(min_role=Role.ADMIN)
def document_upload(request, project):
    from . import documents

    form = DocumentUploadForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = documents.document_import(
                project=project,
                filename=upload.name,
                data=upload.read(),
                chunk_size=form.cleaned_data["chunk_size"],
                chunk_overlap=form.cleaned_data["chunk_overlap"],
                user=request.user,
            )
        except SynthLabError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(
                request,
                f"{result['name']}: {result['characters']} characters in {result['chunks']} chunks "
                f"({result['created']} new, {result['updated']} updated).",
            )
            return redirect("generation:method_inputs", project_id=project.pk)
    return _render_inputs_error(request, project, document_form=form)


@require_POST
@project_view(min_role=Role.ADMIN)
def qa_to_eval(request, project):
    from . import documents

    moved = documents.accepted_qa_to_eval(project=project)
    if moved:
        messages.success(
            request, f"{moved} document chunk(s) with accepted QA pairs moved to the eval split."
        )
    else:
        messages.info(
            request, "No accepted QA pairs to move: none rated 4 or more or edited on train items yet."
        )
    return redirect("generation:method_inputs", project_id=project.pk)


@project_view(min_role=Role.ADMIN)
def constitution_edit(request, project):
    form = ConstitutionForm(
        request.POST or None, initial={"constitution": method_inputs.constitution_lines(project)}
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            principles = method_inputs.constitution_save(
                project=project, text=form.cleaned_data["constitution"]
            )
        except SynthLabError as exc:
            form_errors_from(form, exc)
        else:
            messages.success(request, f"Constitution saved: {len(principles)} principles.")
            return redirect("generation:constitution", project_id=project.pk)
    if request.method == "POST":
        status = 400
    return render(
        request,
        "generation/constitution.html",
        {
            "project": project,
            "form": form,
            "custom": bool((project.options or {}).get("constitution")),
        },
        status=status,
    )


def _curation_context(project) -> dict:
    from .method_stats import curation_quality

    labels = method_inputs.curation_dev_labels(project)
    page = method_inputs.curation_pairs(project)[:200]
    return {
        "project": project,
        "pairs": [{"cand": c, "good": labels.get(str(c.pk))} for c in page],
        "quality": curation_quality(project),
    }


@project_view(min_role=Role.ADMIN)
def curation_dev_set(request, project):
    return render(request, "generation/curation_dev_set.html", _curation_context(project))


@require_POST
@project_view(min_role=Role.ADMIN)
def curation_dev_label(request, project, candidate_id):
    from .method_stats import curation_dev_label_set, curation_quality

    value = request.POST.get("good")
    good = {"true": True, "false": False, "": None, "clear": None}.get(value, "invalid")
    try:
        if good == "invalid":
            raise ValidationFailed('Label the pair good ("true"), bad ("false") or clear it.')
        labels = curation_dev_label_set(project=project, candidate_id=candidate_id, good=good)
    except NotFound:
        raise Http404("No such backtranslation pair in this project.") from None
    except SynthLabError as exc:
        if request.htmx:
            return HttpResponse(exc.message, status=400)
        flash_error(request, exc)
        return redirect("generation:curation_dev_set", project_id=project.pk)
    if request.htmx:
        cand = method_inputs.curation_pairs(project).get(pk=candidate_id)
        return render(
            request,
            "generation/curation_dev_set.html#pair",
            {
                "project": project,
                "row": {"cand": cand, "good": labels.get(str(candidate_id))},
                "quality": curation_quality(project),
                "oob": True,
            },
        )
    return redirect("generation:curation_dev_set", project_id=project.pk)
