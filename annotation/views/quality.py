"""Team workflow pages: the adjudication queue and task (reviewers and admins), gold items,
assignment and pause settings, and webhooks (admins)."""

import json

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from synthlab.errors import NotFound, SynthLabError

from .. import selectors, stats
from ..models import (
    AdjudicationDecision,
    Item,
    ItemAssignment,
    Membership,
    ReviewMode,
    ReviewTask,
    Role,
    TaskType,
    Webhook,
    WebhookEvent,
)
from ..services import projects as project_services
from ..services import quality as quality_services
from ..services import webhooks as webhook_services
from .base import flash_error, project_view

# --- Adjudication --------------------------------------------------------------------------------


@project_view(min_role=Role.REVIEWER)
def adjudication_queue(request, project):
    mode = request.GET.get("mode") if request.GET.get("mode") in ReviewMode.values else None
    rows = stats.adjudication_queue(project=project, mode=mode)
    return render(
        request,
        "annotation/adjudication_queue.html",
        {
            "project": project,
            "is_admin": selectors.role_at_least(project.current_role, Role.ADMIN),
            "rows": rows,
            "mode": mode or "",
        },
    )


def _task_of(project, task_id) -> ReviewTask:
    task = (
        ReviewTask.objects.select_related("item", "candidate_a", "candidate_b")
        .filter(project=project, pk=task_id)
        .first()
    )
    if task is None:
        raise Http404("No such task in this project.")
    task.project = project
    return task


def _value_from_form(task: ReviewTask, post) -> dict:
    """The final answer from the adjudication form's fields, shaped like an annotation value."""
    if post.get("use_value"):
        try:
            return json.loads(post["use_value"])
        except ValueError:
            return {}
    if task.mode == ReviewMode.RATE:
        return {"rating": post.get("rating") or None, "comment": post.get("comment", "")}
    if task.mode == ReviewMode.COMPARE:
        return {"choice": post.get("choice"), "reason": post.get("reason", "")}
    if task.mode == ReviewMode.EDIT:
        return {"text": post.get("text", "")}
    if task.project.task_type == TaskType.NER:
        try:
            return {"spans": json.loads(post.get("spans") or "[]")}
        except ValueError:
            return {"spans": None}
    return {"labels": post.getlist("labels")}


@project_view(min_role=Role.REVIEWER)
def adjudication_task(request, project, task_id):
    task = _task_of(project, task_id)
    if request.method == "POST":
        try:
            if request.POST.get("decision") == AdjudicationDecision.SENT_BACK:
                quality_services.adjudication_send_back(
                    task=task,
                    user=request.user,
                    extra=request.POST.get("extra", 1),
                    note=request.POST.get("note", ""),
                )
                messages.success(request, "Sent back: the task is open for more annotations.")
            else:
                quality_services.adjudication_finalize(
                    task=task,
                    user=request.user,
                    value=_value_from_form(task, request.POST),
                    note=request.POST.get("note", ""),
                )
                messages.success(request, "Final answer saved; exports will use it.")
        except SynthLabError as exc:
            flash_error(request, exc)
            return redirect(reverse("annotation:adjudication_task", args=[project.pk, task.pk]))
        following = stats.adjudication_queue(project=project)
        if following:
            return redirect(reverse("annotation:adjudication_task", args=[project.pk, following[0]["id"]]))
        return redirect(reverse("annotation:adjudication_queue", args=[project.pk]))
    detail = stats.task_review_detail(task=task)
    return render(
        request,
        "annotation/adjudication_task.html",
        {
            "project": project,
            "is_admin": selectors.role_at_least(project.current_role, Role.ADMIN),
            "task": task,
            "item": task.item,
            "annotations": detail["annotations"],
            "adjudication": detail["adjudication"],
            "is_ner": project.task_type == TaskType.NER,
        },
    )


# --- Gold, assignment, pause ---------------------------------------------------------------------

OPTION_FIELDS = {
    "gold_rate": "fraction",
    "gold_pause_below": "fraction",
    "gold_min_answers": "int",
    "gold_rating_tolerance": "int",
    "agreement_threshold": "fraction",
    "adjudication_threshold": "fraction",
    "adjudication_sample_rate": "fraction",
}


def _options_from(post) -> dict:
    options, errors = {}, []
    for key, kind in OPTION_FIELDS.items():
        raw = (post.get(key) or "").strip()
        if raw == "":
            continue
        try:
            value = float(raw) if kind == "fraction" else int(raw)
        except ValueError:
            errors.append(f"{key.replace('_', ' ')}: enter a number.")
            continue
        if kind == "fraction" and not 0 <= value <= 1:
            errors.append(f"{key.replace('_', ' ')}: enter a number from 0 to 1.")
            continue
        if kind == "int" and value < 0:
            errors.append(f"{key.replace('_', ' ')}: enter a whole number of 0 or more.")
            continue
        options[key] = value
    return options if not errors else {"__errors__": errors}


def _item_ids(raw: str) -> list[int]:
    ids = []
    for part in (raw or "").replace(",", " ").split():
        if "-" in part:
            low, _, high = part.partition("-")
            if low.isdigit() and high.isdigit() and int(high) - int(low) < 100_000:
                ids.extend(range(int(low), int(high) + 1))
                continue
        if not part.isdigit():
            raise ValueError(f"{part!r} is not an item id; write ids like 12, 15-20.")
        ids.append(int(part))
    return ids


def _items_selected(project, post):
    if (post.get("item_ids") or "").strip():
        ids = _item_ids(post["item_ids"])
        items = Item.objects.filter(project=project, pk__in=ids)
        missing = sorted(set(ids) - set(items.values_list("pk", flat=True)))
        if missing:
            raise ValueError(f"No item {missing[0]} in this project.")
        return items
    if post.get("split") or post.get("search") or post.get("status"):
        return selectors.item_list(
            project=project, split=post.get("split"), status=post.get("status"), search=post.get("search")
        )
    raise ValueError("Choose items: list their ids, or filter by split, status or text.")


@project_view(min_role=Role.ADMIN)
def quality_settings(request, project):
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "options":
                options = _options_from(request.POST)
                if "__errors__" in options:
                    for error in options["__errors__"]:
                        messages.error(request, error)
                else:
                    merged = {k: v for k, v in (project.options or {}).items() if k not in OPTION_FIELDS}
                    project_services.project_update(project=project, data={"options": {**merged, **options}})
                    messages.success(request, "Quality settings saved.")
            elif action in ("gold", "ungold"):
                items = list(_items_selected(project, request.POST))
                reference = None
                if action == "gold" and (request.POST.get("reference") or "").strip():
                    try:
                        reference = json.loads(request.POST["reference"])
                    except ValueError:
                        reference = request.POST["reference"].strip()  # a bare label
                n = quality_services.items_gold_set(
                    project=project, items=items, reference=reference, is_gold=action == "gold"
                )
                messages.success(
                    request, f"{n} item(s) {'marked' if action == 'gold' else 'no longer'} gold."
                )
            elif action in ("assign", "unassign"):
                usernames = request.POST.getlist("annotators")
                items = _items_selected(project, request.POST)
                if action == "assign":
                    n = quality_services.items_assign(
                        project=project,
                        items=items,
                        usernames=usernames,
                        user=request.user,
                        replace=bool(request.POST.get("replace")),
                    )
                    messages.success(request, f"{n} assignment(s) added.")
                else:
                    n = quality_services.items_unassign(
                        project=project, items=items, usernames=usernames or None
                    )
                    messages.success(request, f"{n} assignment(s) removed; those items go to everyone again.")
        except SynthLabError as exc:
            flash_error(request, exc)
        except ValueError as exc:
            messages.error(request, str(exc))
        return redirect(reverse("annotation:quality_settings", args=[project.pk]))
    members = Membership.objects.filter(project=project).select_related("user").order_by("user__username")
    assignment_counts = {}
    for username in ItemAssignment.objects.filter(item__project=project).values_list(
        "user__username", flat=True
    ):
        assignment_counts[username] = assignment_counts.get(username, 0) + 1
    return render(
        request,
        "annotation/quality_settings.html",
        {
            "project": project,
            "is_admin": True,
            "options": project.options or {},
            "members": members,
            "annotators": [m for m in members if m.role == Role.ANNOTATOR],
            "assignment_counts": assignment_counts,
            "gold_items": project.items.filter(is_gold=True).order_by("id")[:200],
            "gold_count": project.items.filter(is_gold=True).count(),
        },
    )


@require_POST
@project_view(min_role=Role.ADMIN)
def member_resume(request, project, username):
    membership = (
        Membership.objects.filter(project=project, user__username=username).select_related("user").first()
    )
    if membership is None:
        messages.error(request, f'"{username}" is not a member of this project.')
    else:
        try:
            quality_services.membership_resume(membership=membership, user=request.user)
            messages.success(request, f"{username} is back in the queue.")
        except SynthLabError as exc:
            flash_error(request, exc)
    return redirect(request.POST.get("next") or reverse("annotation:dashboard", args=[project.pk]))


# --- Webhooks ------------------------------------------------------------------------------------


@project_view(min_role=Role.ADMIN)
def webhooks(request, project):
    if request.method == "POST":
        action = request.POST.get("action", "create")
        try:
            if action == "create":
                hook = webhook_services.webhook_create(
                    project=project,
                    url=request.POST.get("url", ""),
                    events=request.POST.getlist("events"),
                    secret=request.POST.get("secret", ""),
                    user=request.user,
                )
                if not request.POST.get("secret"):
                    messages.success(
                        request, f"Webhook added. Its signing secret (shown once): {hook.secret}"
                    )
                else:
                    messages.success(request, "Webhook added.")
            else:
                hook = Webhook.objects.filter(project=project, pk=request.POST.get("webhook")).first()
                if hook is None:
                    raise NotFound("No such webhook in this project.")
                if action == "toggle":
                    webhook_services.webhook_update(webhook=hook, active=not hook.active)
                elif action == "delete":
                    webhook_services.webhook_delete(webhook=hook)
                    messages.success(request, "Webhook removed.")
                elif action == "resend":
                    delivery = hook.deliveries.filter(pk=request.POST.get("delivery")).first()
                    if delivery is None:
                        raise NotFound("No such delivery.")
                    webhook_services.webhook_delivery_resend(delivery=delivery)
                    messages.success(request, f"{delivery.event} queued again.")
        except SynthLabError as exc:
            flash_error(request, exc)
        return redirect(reverse("annotation:webhooks", args=[project.pk]))
    hooks = list(project.webhooks.order_by("id"))
    for hook in hooks:
        hook.recent = list(hook.deliveries.order_by("-created_at", "-id")[:20])
    return render(
        request,
        "annotation/webhooks.html",
        {"project": project, "is_admin": True, "hooks": hooks, "events": WebhookEvent.choices},
    )
