"""The review queue over the API: next task, submit, skip, and the annotation list."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from synthlab.errors import ValidationFailed

from .. import review_selectors, selectors
from ..models import Annotation, ReviewTask
from ..services import review as review_services


class TaskCandidateSerializer(serializers.Serializer):
    position = serializers.CharField(help_text='"a" or "b": where the candidate is shown.')
    id = serializers.IntegerField()
    text = serializers.CharField()
    label = serializers.JSONField()
    model = serializers.CharField()
    source = serializers.CharField()
    scores = serializers.JSONField()


class TaskItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    text = serializers.CharField()
    prompt = serializers.CharField()
    messages = serializers.JSONField()
    metadata = serializers.JSONField()
    split = serializers.CharField()


class TaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    mode = serializers.CharField()
    overlap = serializers.IntegerField()
    annotation_count = serializers.IntegerField()
    status = serializers.CharField()
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    item = TaskItemSerializer()
    candidates = TaskCandidateSerializer(many=True)
    draft = serializers.JSONField(allow_null=True, help_text="What you typed before, if anything.")


def task_payload(task: ReviewTask, *, draft: dict | None) -> dict:
    item = task.item
    candidates = [
        {
            "position": position,
            "id": candidate.pk,
            "text": candidate.text,
            "label": candidate.label,
            "model": candidate.model,
            "source": candidate.source,
            "scores": candidate.scores,
        }
        for position, candidate in (("a", task.candidate_a), ("b", task.candidate_b))
        if candidate is not None
    ]
    overlap, annotation_count = task.overlap, task.annotation_count
    if task.is_gold:
        # Gold tasks take every annotator (a larger overlap); shown with the project's numbers so an
        # annotator cannot tell a check from any other task.
        overlap = task.project.overlap
        annotation_count = min(annotation_count, max(overlap - 1, 0))
    return {
        "id": task.pk,
        "project": task.project_id,
        "mode": task.mode,
        "overlap": overlap,
        "annotation_count": annotation_count,
        "status": task.status,
        "lease_expires_at": getattr(task, "lease_expires_at", None),
        "item": {
            "id": item.pk,
            "external_id": item.external_id,
            "text": item.text,
            "prompt": item.prompt,
            "messages": item.messages,
            "metadata": item.metadata,
            "split": item.split,
        },
        "candidates": candidates,
        "draft": draft,
    }


_created_at_field = serializers.DateTimeField()


def annotation_payload(annotation: Annotation) -> dict:
    """What AnnotationSerializer gives for one annotation, built directly: the submit answers one
    per request, and instantiating a ModelSerializer (its fields are rebuilt each time) costs more
    CPU than the submit's queries."""
    return {
        "id": annotation.pk,
        "task": annotation.task_id,
        "mode": str(annotation.mode),
        "annotator": annotation.annotator.get_username(),
        "value": annotation.value,
        "client_id": str(annotation.client_id),
        "duration_ms": annotation.duration_ms,
        "created_at": _created_at_field.to_representation(annotation.created_at),
    }


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username")
    mode = serializers.CharField(help_text="rate, compare, edit or label.")

    class Meta:
        model = Annotation
        fields = ["id", "task", "mode", "annotator", "value", "client_id", "duration_ms", "created_at"]
        read_only_fields = fields


class TaskNextApi(APIView):
    @extend_schema(
        operation_id="tasks_next",
        parameters=[
            OpenApiParameter(
                "mode",
                OpenApiTypes.STR,
                enum=["rate", "compare", "edit", "label"],
                description="Review mode; left out, the project's modes are tried in order.",
            )
        ],
        responses={200: TaskSerializer, 204: None},
    )
    def get(self, request, project_id):
        mode = request.query_params.get("mode")
        if mode:
            task = review_services.review_task_next_by_id(project_id=project_id, user=request.user, mode=mode)
        else:
            project = selectors.project_get(user=request.user, project_id=project_id)
            task = None
            for candidate_mode in project.modes:
                task = review_services.review_task_next(
                    project=project, user=request.user, mode=candidate_mode
                )
                if task is not None:
                    break
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(task_payload(task, draft=task.user_draft))


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ValidationFailed(
            "Send a JSON object.", details=[{"field": None, "message": "Expected an object."}]
        )
    return request.data


class AnnotationCreateApi(APIView):
    @extend_schema(
        operation_id="tasks_annotations_create",
        request=inline_serializer(
            "AnnotationSubmit",
            {
                "value": serializers.JSONField(
                    help_text='rate {"rating", "comment"}; compare {"choice", "reason"}; edit {"text"}; '
                    'label {"labels"} or {"spans": [{"start", "end", "label"}]}'
                ),
                "client_id": serializers.UUIDField(),
                "duration_ms": serializers.IntegerField(required=False),
            },
        ),
        responses={201: AnnotationSerializer, 200: AnnotationSerializer},
    )
    def post(self, request, task_id):
        annotation, created = review_services.annotation_submit_by_id(
            task_id=task_id, user=request.user, data=request.data
        )
        return Response(
            annotation_payload(annotation),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class TaskSkipApi(APIView):
    @extend_schema(
        operation_id="tasks_skip",
        request=inline_serializer("TaskSkip", {"reason": serializers.CharField(required=False)}),
        responses=inline_serializer(
            "TaskSkipped", {"task": serializers.IntegerField(), "skipped": serializers.BooleanField()}
        ),
    )
    def post(self, request, task_id):
        task = review_selectors.task_get(user=request.user, task_id=task_id, with_content=False)
        review_services.task_skip(task=task, user=request.user, reason=_body(request).get("reason") or "")
        return Response({"task": task.pk, "skipped": True})


class AnnotationListApi(GenericAPIView):
    serializer_class = AnnotationSerializer

    @extend_schema(
        operation_id="projects_annotations_list",
        parameters=[
            OpenApiParameter("mode", OpenApiTypes.STR, enum=["rate", "compare", "edit", "label"]),
            OpenApiParameter("annotator", OpenApiTypes.STR, description="Username."),
            OpenApiParameter("date", OpenApiTypes.DATE, description="Created on this day."),
            OpenApiParameter("date_from", OpenApiTypes.DATE),
            OpenApiParameter("date_to", OpenApiTypes.DATE, description="Inclusive."),
        ],
    )
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id)
        params = request.query_params
        annotations = review_selectors.annotation_list(
            project=project,
            user=request.user,
            mode=params.get("mode"),
            annotator=params.get("annotator"),
            date=params.get("date"),
            date_from=params.get("date_from"),
            date_to=params.get("date_to"),
        )
        page = self.paginate_queryset(annotations)
        return self.get_paginated_response(AnnotationSerializer(page, many=True).data)
