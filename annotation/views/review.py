"""The review queue in the browser. Every form works as a plain POST + redirect; with htmx the answer
is posted in place and the next task swapped in without a page load."""

import json
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from synthlab.errors import Conflict, Forbidden, NotFound, SynthLabError, ValidationFailed

from .. import review_selectors
from ..models import ReviewMode, Role, TaskType
from ..services import review as review_services
from .base import project_view

KEY_LABELS = "123456789"


def _queue_url(project_id: int, mode: str | None = None) -> str:
    url = reverse("annotation:queue", kwargs={"project_id": project_id})
    return f"{url}?mode={mode}" if mode else url


def _live_layer() -> bool:
    """Whether websockets can carry live counts across server processes (not the in-memory layer)."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return not backend.endswith("InMemoryChannelLayer")


# --- Building the panel ------------------------------------------------------------------------------


def _suggested_labels(task) -> list[str]:
    label = task.candidate_a.label if task.candidate_a else None
    if isinstance(label, dict):
        label = label.get("labels")
    if isinstance(label, str):
        return [label]
    return [x for x in label or [] if isinstance(x, str)]


def _suggested_spans(task) -> list[dict]:
    label = task.candidate_a.label if task.candidate_a else None
    if isinstance(label, dict):
        label = label.get("spans")
    return [
        {"start": s["start"], "end": s["end"], "label": s["label"]}
        for s in label or []
        if isinstance(s, dict) and {"start", "end", "label"} <= set(s)
    ]


def _confidence(task) -> float | None:
    scores = (task.candidate_a.scores if task.candidate_a else None) or {}
    for key in ("confidence", "agreement", "self_consistency"):
        value = scores.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _segments(text: str, spans: list[dict]) -> list[dict]:
    """The text cut at span edges, for showing suggested spans without JavaScript."""
    pieces, at = [], 0
    for span in sorted(spans, key=lambda s: (s["start"], s["end"])):
        start, end = span["start"], span["end"]
        if start < at or not 0 <= start < end <= len(text):
            continue
        if start > at:
            pieces.append({"text": text[at:start], "label": None})
        pieces.append({"text": text[start:end], "label": span["label"]})
        at = end
    if at < len(text):
        pieces.append({"text": text[at:], "label": None})
    return pieces


def panel_context(request, task, *, values: dict | None = None, error: str = "", notice: str = "") -> dict:
    """Everything the task panel shows. `values` are what the form held (after a refused submit) or
    the saved draft; without either, the candidate's suggestions are pre-filled."""
    project = task.project
    user = request.user
    if values is not None:
        draft = values
    elif hasattr(task, "user_draft"):  # loaded with the task by review_task_next
        draft = task.user_draft
    else:
        draft = review_selectors.draft_get(task=task, user=user)
    has_draft = bool(draft) and values is None
    draft = draft or {}
    labels = [{"name": name, "key": KEY_LABELS[i] if i < 9 else ""} for i, name in enumerate(project.labels)]
    context = {
        "project": project,
        "task": task,
        "item": task.item,
        "mode": task.mode,
        "values": draft,
        "has_draft": has_draft,
        "error": error,
        "notice": notice,
        "client_id": draft.get("client_id") or uuid.uuid4(),
        "lease_minutes": settings.SYNTHLAB_LEASE_SECONDS // 60,
        "progress": review_selectors.queue_progress(project=project, user=user).get(task.mode),
        "is_ner": project.task_type == TaskType.NER and task.mode == ReviewMode.LABEL,
        "labels": labels,
        "multi_label": bool((project.options or {}).get("multi_label")),
    }
    if task.mode == ReviewMode.RATE:
        rubric = project.rubric or {}
        context["levels"] = [{"value": n, "text": rubric.get(str(n), "")} for n in range(1, 6)]
        context["selected_rating"] = str(draft.get("rating") or "")
    elif task.mode == ReviewMode.EDIT:
        original = task.candidate_a.text if task.candidate_a else ""
        context["original"] = original
        context["edit_text"] = draft["text"] if isinstance(draft.get("text"), str) else original
        if review_services.is_rationale_draft(task.candidate_a):
            # Label and rationale as separate fields (rationale recipe).
            chosen = draft.get("labels") if "labels" in draft else [task.candidate_a.label]
            context["rationale"] = True
            context["chosen"] = [x for x in chosen or [] if isinstance(x, str)]
    elif task.mode == ReviewMode.LABEL:
        suggested = _suggested_labels(task)
        context["suggested"] = suggested
        context["confidence"] = _confidence(task)
        if context["is_ner"]:
            text = task.item.display_text
            spans_json = draft.get("spans") if isinstance(draft.get("spans"), str) else None
            try:
                spans = json.loads(spans_json) if spans_json else _suggested_spans(task)
            except ValueError:
                spans = _suggested_spans(task)
            context["ner_text"] = text
            context["ner_spans"] = spans_json if spans_json is not None else json.dumps(spans)
            context["ner_segments"] = _segments(text, spans if isinstance(spans, list) else [])
            context["suggested_spans"] = _suggested_spans(task)
        else:
            chosen = draft.get("labels") if "labels" in draft else suggested
            context["chosen"] = [x for x in chosen or [] if isinstance(x, str)]
    return context


def _render_panel(request, task, status: int = 200, **kwargs):
    context = panel_context(request, task, **kwargs)
    template = "annotation/review.html#panel" if request.htmx else "annotation/review.html"
    response = render(request, template, context, status=status)
    if request.htmx:
        response["HX-Replace-Url"] = reverse("annotation:task", kwargs={"task_id": task.pk})
    return response


def _render_next(request, project, mode: str, *, notice: str = "", error: str = ""):
    """The page (or, for htmx, the panel) with this user's next task of `mode`, leased to them."""
    try:
        task = review_services.review_task_next(project=project, user=request.user, mode=mode)
    except Forbidden as exc:
        return _render_empty(request, project, mode, error=exc.message, status=403)
    if task is None:
        return _render_empty(request, project, mode, notice=notice, error=error)
    return _render_panel(request, task, notice=notice, error=error)


def _render_empty(request, project, mode, *, notice="", error="", status=200):
    context = {
        "project": project,
        "mode": mode,
        "task": None,
        "notice": notice,
        "error": error,
        "progress": review_selectors.queue_progress(project=project, user=request.user).get(mode),
    }
    template = "annotation/review.html#panel" if request.htmx else "annotation/review.html"
    response = render(request, template, context, status=status if not request.htmx else 200)
    if request.htmx:
        response["HX-Replace-Url"] = _queue_url(project.pk, mode)
    return response


def _form_value(task, post) -> dict:
    """The answer a form posted, in the shape the API takes."""
    if task.mode == ReviewMode.RATE:
        return {"rating": post.get("rating") or None, "comment": post.get("comment", "")}
    if task.mode == ReviewMode.COMPARE:
        return {"choice": post.get("choice") or None, "reason": post.get("reason", "")}
    if task.mode == ReviewMode.EDIT:
        if "labels" in post and review_services.is_rationale_draft(task.candidate_a):
            return {"text": post.get("text", ""), "labels": post.getlist("labels")}
        return {"text": post.get("text", "")}
    if task.project.task_type == TaskType.NER:
        try:
            spans = json.loads(post.get("spans") or "[]")
        except ValueError:
            raise ValidationFailed(
                'The spans are not valid JSON; write them as [{"start": 0, "end": 5, "label": "..."}].',
                details=[{"field": "value.spans", "message": "Not JSON."}],
            ) from None
        return {"spans": spans}
    return {"labels": post.getlist("labels")}


def _form_values(post) -> dict:
    """What the form held, to show again or keep as a draft."""
    values = {
        key: post.get(key)
        for key in ("rating", "comment", "choice", "reason", "text", "spans")
        if key in post
    }
    if "labels" in post or "labels_present" in post:
        values["labels"] = post.getlist("labels")
    return values


def _task_for(request, task_id):
    try:
        return review_selectors.task_get(user=request.user, task_id=task_id)
    except NotFound:
        raise Http404("No such task.") from None


# --- Views -------------------------------------------------------------------------------------------


@project_view()
def queue(request, project):
    """My queue. Without ?mode=: guidelines and progress per mode; with it: the next task."""
    mode = request.GET.get("mode")
    if mode:
        if mode not in project.modes:
            messages.error(request, f"This project reviews in: {', '.join(project.modes)}.")
            return redirect(_queue_url(project.pk))
        return _render_next(request, project, mode)
    progress = review_selectors.queue_progress(project=project, user=request.user)
    return render(
        request,
        "annotation/review.html",
        {"project": project, "mode": None, "overview": progress.values(), "task": None},
    )


@login_required
def task_detail(request, task_id):
    """A task by its address: the user's own answer if they gave one, else the task itself when they
    may take it now."""
    task = _task_for(request, task_id)
    annotation = review_selectors.annotation_get(task=task, user=request.user)
    if annotation is not None:
        return render(
            request,
            "annotation/review.html",
            {
                "project": task.project,
                "mode": task.mode,
                "task": None,
                "answered": annotation,
                "answered_task": task,
                "progress": review_selectors.queue_progress(project=task.project, user=request.user).get(
                    task.mode
                ),
            },
        )
    if not review_services.task_claim(task=task, user=request.user):
        return _render_empty(
            request,
            task.project,
            task.mode,
            error=f"Task {task.pk} is not open to you now: it is complete, held by other annotators, "
            "or not in your queue.",
        )
    return _render_panel(request, task)


@require_POST
@login_required
def task_annotate(request, task_id):
    task = _task_for(request, task_id)
    try:
        annotation, created = review_services.annotation_submit(
            task=task,
            user=request.user,
            value=_form_value(task, request.POST),
            client_id=request.POST.get("client_id"),
            duration_ms=request.POST.get("duration_ms") or None,
        )
    except ValidationFailed as exc:
        values = _form_values(request.POST)
        values["client_id"] = request.POST.get("client_id")
        review_services.task_claim(task=task, user=request.user)
        return _render_panel(
            request, task, status=400 if not request.htmx else 200, values=values, error=exc.message
        )
    except Conflict as exc:
        if not request.htmx:
            messages.error(request, exc.message)
            return redirect(_queue_url(task.project_id, task.mode))
        return _render_next(request, task.project, task.mode, error=exc.message)
    notice = "Saved." if created else "Already saved."
    if not request.htmx:
        messages.success(request, notice)
        return redirect(_queue_url(task.project_id, task.mode))
    return _render_next(request, task.project, task.mode, notice=notice)


@require_POST
@login_required
def task_skip(request, task_id):
    task = _task_for(request, task_id)
    try:
        review_services.task_skip(task=task, user=request.user, reason=request.POST.get("skip_reason", ""))
    except SynthLabError as exc:
        error, notice = exc.message, ""
    else:
        error, notice = "", "Skipped; it comes back after the rest."
    if not request.htmx:
        (messages.error if error else messages.info)(request, error or notice)
        return redirect(_queue_url(task.project_id, task.mode))
    return _render_next(request, task.project, task.mode, notice=notice, error=error)


@require_POST
@login_required
def task_draft(request, task_id):
    """Keeps what the form holds; htmx posts here while the annotator types."""
    task = _task_for(request, task_id)
    try:
        review_services.draft_save(task=task, user=request.user, value=_form_values(request.POST))
    except SynthLabError as exc:
        return HttpResponse(exc.message, content_type="text/plain; charset=utf-8", status=200)
    return HttpResponse(
        f"Draft saved {timezone.localtime():%H:%M:%S}.", content_type="text/plain; charset=utf-8"
    )


@project_view(min_role=Role.ADMIN)
def queue_live(request, project):
    """Live counts for admins: pushed over a websocket, or polled where the channel layer is in-memory
    (one process only)."""
    context = {
        "project": project,
        "counts": review_selectors.queue_counts(project=project),
        "live": _live_layer(),
    }
    if request.htmx:
        return render(request, "annotation/review_live.html#counts", context)
    return render(request, "annotation/review_live.html", context)
