"""Quality API: project statistics, webhooks, assignment, gold and adjudication. Thin: each view
checks the caller's role through `selectors.project_get` and calls a selector or a service."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from synthlab.errors import Forbidden, NotFound, ValidationFailed

from .. import selectors, stats
from ..models import (
    AdjudicationDecision,
    Item,
    ItemAssignment,
    Membership,
    ReviewMode,
    ReviewTask,
    Role,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)
from ..services import quality as quality_services
from ..services import webhooks as webhook_services


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))
    secret = serializers.CharField(write_only=True, required=False, allow_blank=True)

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "secret", "active", "created_at"]
        read_only_fields = ["id", "created_at"]


class WebhookUpdateSerializer(serializers.Serializer):
    active = serializers.BooleanField(required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), required=False
    )


class WebhookDeliverySerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True, help_text="pending, retrying, succeeded or failed.")

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook",
            "event",
            "payload",
            "status",
            "attempts",
            "response_status",
            "response_body",
            "error",
            "next_attempt_at",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


def _webhook_get(*, project, webhook_id) -> Webhook:
    webhook = Webhook.objects.filter(project=project, pk=webhook_id).first()
    if webhook is None:
        raise NotFound("No such webhook in this project.")
    return webhook


class WebhookListApi(GenericAPIView):
    serializer_class = WebhookSerializer

    @extend_schema(operation_id="projects_webhooks_list")
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        page = self.paginate_queryset(project.webhooks.order_by("id"))
        return self.get_paginated_response(WebhookSerializer(page, many=True).data)

    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        body = request.data if isinstance(request.data, dict) else {}
        webhook = webhook_services.webhook_create(
            project=project,
            url=body.get("url", ""),
            events=body.get("events"),
            secret=body.get("secret") or "",
            user=request.user,
        )
        data = WebhookSerializer(webhook).data
        # The secret is shown once, here, so a generated one can be copied into the receiver.
        data["secret"] = webhook.secret
        return Response(data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(GenericAPIView):
    serializer_class = WebhookSerializer

    def get(self, request, project_id, webhook_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        return Response(WebhookSerializer(_webhook_get(project=project, webhook_id=webhook_id)).data)

    @extend_schema(request=WebhookUpdateSerializer, responses=WebhookSerializer)
    def patch(self, request, project_id, webhook_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        webhook = _webhook_get(project=project, webhook_id=webhook_id)
        body = WebhookUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        webhook = webhook_services.webhook_update(webhook=webhook, **body.validated_data)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id, webhook_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        webhook_services.webhook_delete(webhook=_webhook_get(project=project, webhook_id=webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(GenericAPIView):
    serializer_class = WebhookDeliverySerializer

    @extend_schema(operation_id="projects_webhooks_deliveries_list")
    def get(self, request, project_id, webhook_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        webhook = _webhook_get(project=project, webhook_id=webhook_id)
        page = self.paginate_queryset(webhook.deliveries.order_by("-created_at", "-id"))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryResendApi(GenericAPIView):
    serializer_class = WebhookDeliverySerializer

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    def post(self, request, project_id, webhook_id, delivery_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        webhook = _webhook_get(project=project, webhook_id=webhook_id)
        delivery = webhook.deliveries.filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound("No such delivery for this webhook.")
        fresh = webhook_services.webhook_delivery_resend(delivery=delivery)
        return Response(WebhookDeliverySerializer(fresh).data, status=status.HTTP_202_ACCEPTED)


# --- Statistics ----------------------------------------------------------------------------------


def _json_ready(value):
    """Dates and tuples in the stats as JSON types."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class StatsApi(APIView):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        description=(
            "Progress per mode (open, leased, done; gold tasks apart), agreement per mode "
            "(krippendorff_alpha for ratings, fleiss_kappa and pairwise cohen_kappa for choices and "
            "labels, span_f1 for NER; each with the number of tasks it rests on), per-annotator counts, "
            "throughput, gold accuracy and agreement with the majority, compare win rates and "
            "Bradley–Terry scores with 95% bootstrap intervals per model, rating and label "
            "distributions, progress and agreement over time. Reviewers and admins only."
        ),
    )
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
        return Response(_json_ready(stats.project_stats(project=project)))


class LowAgreementApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("mode", OpenApiTypes.STR, enum=ReviewMode.values),
            OpenApiParameter("below", OpenApiTypes.NUMBER, description="Agreement threshold 0..1."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
        mode, below = _agreement_filters(project, request.query_params)
        rows = stats.low_agreement_tasks(project=project, below=below, mode=mode)
        return Response({"below": below, "mode": mode, "count": len(rows), "results": rows})


def _agreement_filters(project, params) -> tuple[str | None, float]:
    mode = params.get("mode") or None
    if mode and mode not in ReviewMode.values:
        raise ValidationFailed(
            f"mode is one of: {', '.join(ReviewMode.values)}.",
            details=[{"field": "mode", "message": "Unknown."}],
        )
    raw = params.get("below")
    if raw in (None, ""):
        return mode, stats.agreement_threshold(project)
    try:
        below = float(raw)
    except ValueError:
        below = -1.0
    if not 0.0 <= below <= 1.0:
        raise ValidationFailed(
            "below is an agreement level from 0 to 1, e.g. 0.5.",
            details=[{"field": "below", "message": "0..1."}],
        )
    return mode, below


# --- Adjudication --------------------------------------------------------------------------------


class AdjudicationQueueApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("mode", OpenApiTypes.STR, enum=ReviewMode.values)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
        rows = stats.adjudication_queue(project=project, mode=request.query_params.get("mode") or None)
        return Response({"count": len(rows), "results": _json_ready(rows)})


def _reviewer_task(request, task_id):
    """The task, for a reviewer or admin of its project (NotFound for others; Forbidden below)."""
    task = (
        ReviewTask.objects.select_related("item", "candidate_a", "candidate_b")
        .filter(pk=task_id if str(task_id).isdigit() else None)
        .first()
    )
    if task is None:
        raise NotFound("No such task.")
    try:
        task.project = selectors.project_get(
            user=request.user, project_id=task.project_id, min_role=Role.REVIEWER
        )
    except Forbidden:
        raise Forbidden("Only reviewers and admins see every annotation of a task.") from None
    return task


def task_review_payload(task) -> dict:
    detail = stats.task_review_detail(task=task)
    adjudication = detail["adjudication"]
    return {
        "task": task.pk,
        "item": task.item_id,
        "mode": task.mode,
        "is_gold": task.is_gold,
        "candidates": [
            {
                "position": position,
                "id": c.pk,
                "text": c.text,
                "label": c.label,
                "model": c.model,
                "source": c.source,
            }
            for position, c in (("a", task.candidate_a), ("b", task.candidate_b))
            if c is not None
        ],
        "annotations": [
            {
                "id": a.pk,
                "annotator": a.annotator.get_username(),
                "value": a.value,
                "duration_ms": a.duration_ms,
                "created_at": a.created_at.isoformat(),
            }
            for a in detail["annotations"]
        ],
        "adjudication": None
        if adjudication is None
        else {
            "decision": adjudication.decision,
            "value": adjudication.value,
            "note": adjudication.note,
            "adjudicator": adjudication.adjudicator.get_username(),
            "updated_at": adjudication.updated_at.isoformat(),
        },
    }


class TaskReviewApi(APIView):
    """A task with every annotation and who gave it (reviewers and admins), and the ruling on it."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, task_id):
        return Response(task_review_payload(_reviewer_task(request, task_id)))

    @extend_schema(
        request=inline_serializer(
            "AdjudicationRequest",
            {
                "decision": serializers.ChoiceField(choices=AdjudicationDecision.choices),
                "value": serializers.JSONField(required=False),
                "extra": serializers.IntegerField(required=False),
                "note": serializers.CharField(required=False),
            },
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, task_id):
        task = _reviewer_task(request, task_id)
        body = request.data if isinstance(request.data, dict) else {}
        decision = body.get("decision")
        if decision == AdjudicationDecision.FINAL:
            quality_services.adjudication_finalize(
                task=task, user=request.user, value=body.get("value"), note=body.get("note") or ""
            )
        elif decision == AdjudicationDecision.SENT_BACK:
            quality_services.adjudication_send_back(
                task=task, user=request.user, extra=body.get("extra", 1), note=body.get("note") or ""
            )
        else:
            raise ValidationFailed(
                'decision is "final" (with a value) or "sent_back" (with extra: how many more annotations).',
                details=[{"field": "decision", "message": "Unknown decision."}],
            )
        task.refresh_from_db()
        return Response(task_review_payload(task))


# --- Gold, assignment, pause ---------------------------------------------------------------------


def _items_from(project, body: dict):
    """Items named by id (`items`), by external id (`external_ids`, e.g. just imported with their
    expected answers), or by a filter (`filter`: split, status, search)."""
    ids = body.get("items")
    if ids is not None:
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValidationFailed(
                '"items" is a list of item ids.', details=[{"field": "items", "message": "List of ids."}]
            )
        items = Item.objects.filter(project=project, pk__in=ids)
        found = set(items.values_list("pk", flat=True))
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationFailed(
                f"No item {missing[0]} in this project.",
                details=[{"field": "items", "message": f"Unknown: {missing}"}],
            )
        return items
    external_ids = body.get("external_ids")
    if external_ids is not None:
        if not isinstance(external_ids, list) or not all(isinstance(e, str | int) for e in external_ids):
            raise ValidationFailed(
                '"external_ids" is a list of the items\' external ids.',
                details=[{"field": "external_ids", "message": "List of strings."}],
            )
        wanted = [str(e) for e in external_ids]
        items = Item.objects.filter(project=project, external_id__in=wanted)
        found = set(items.values_list("external_id", flat=True))
        missing = [e for e in wanted if e not in found]
        if missing:
            raise ValidationFailed(
                f"No item with external_id {missing[0]!r} in this project.",
                details=[{"field": "external_ids", "message": f"Unknown: {missing[:20]}"}],
            )
        return items
    filters = body.get("filter")
    if not isinstance(filters, dict):
        raise ValidationFailed(
            'Name the items: "items": [ids], "external_ids": [...] or "filter": {"split", "status", "search"}.',
            details=[{"field": "items", "message": "Required."}],
        )
    return selectors.item_list(
        project=project,
        split=filters.get("split"),
        status=filters.get("status"),
        search=filters.get("search"),
    )


class GoldApi(APIView):
    @extend_schema(
        request=inline_serializer(
            "GoldRequest",
            {
                "items": serializers.ListField(child=serializers.IntegerField(), required=False),
                "external_ids": serializers.ListField(child=serializers.CharField(), required=False),
                "filter": serializers.DictField(required=False),
                "reference": serializers.JSONField(required=False),
                "is_gold": serializers.BooleanField(required=False, default=True),
            },
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        body = request.data if isinstance(request.data, dict) else {}
        items = list(_items_from(project, body))
        changed = quality_services.items_gold_set(
            project=project,
            items=items,
            reference=body.get("reference"),
            is_gold=body.get("is_gold", True) is not False,
        )
        return Response({"items": changed})


class AssignmentApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("annotator", OpenApiTypes.STR)], responses={200: OpenApiTypes.OBJECT}
    )
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        rows = (
            ItemAssignment.objects.filter(item__project=project)
            .select_related("user")
            .order_by("item_id", "user_id")
        )
        if request.query_params.get("annotator"):
            rows = rows.filter(user__username=request.query_params["annotator"])
        return Response(
            {
                "count": rows.count(),
                "results": [{"item": a.item_id, "annotator": a.user.get_username()} for a in rows[:5000]],
            }
        )

    @extend_schema(
        request=inline_serializer(
            "AssignmentRequest",
            {
                "annotators": serializers.ListField(child=serializers.CharField()),
                "items": serializers.ListField(child=serializers.IntegerField(), required=False),
                "filter": serializers.DictField(required=False),
                "replace": serializers.BooleanField(required=False),
            },
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        body = request.data if isinstance(request.data, dict) else {}
        created = quality_services.items_assign(
            project=project,
            items=_items_from(project, body),
            usernames=body.get("annotators") or [],
            user=request.user,
            replace=bool(body.get("replace")),
        )
        return Response({"assigned": created})

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def delete(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        body = request.data if isinstance(request.data, dict) else {}
        removed = quality_services.items_unassign(
            project=project, items=_items_from(project, body), usernames=body.get("annotators") or None
        )
        return Response({"removed": removed})


class MemberPauseApi(APIView):
    @extend_schema(
        request=inline_serializer(
            "PauseRequest",
            {"paused": serializers.BooleanField(), "reason": serializers.CharField(required=False)},
        ),
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, project_id, username):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        membership = (
            Membership.objects.filter(project=project, user__username=username).select_related("user").first()
        )
        if membership is None:
            raise NotFound(f'"{username}" is not a member of this project.')
        body = request.data if isinstance(request.data, dict) else {}
        if body.get("paused") is False:
            quality_services.membership_resume(membership=membership, user=request.user)
        else:
            quality_services.membership_pause(
                membership=membership, reason=body.get("reason") or "", user=request.user
            )
        membership.refresh_from_db()
        return Response(
            {"username": username, "paused": membership.paused, "paused_reason": membership.paused_reason}
        )
