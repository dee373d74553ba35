"""API for the method recipes' inputs: seed tasks, document uploads, the curation dev set."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Role
from annotation.selectors import project_get
from synthlab.errors import ValidationFailed

from . import documents, method_stats, seeds


class SeedTasksApi(APIView):
    @extend_schema(operation_id="seed_tasks_import", request=None, responses={201: dict})
    def post(self, request, project_id):
        """Imports seed tasks (Self-Instruct's seed_tasks.jsonl: a `file` upload, or {"seed_tasks": [...]})."""
        project = project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        upload = request.FILES.get("file")
        if upload is not None:
            rows = seeds.seed_rows_parse(upload.read())
        else:
            rows = request.data.get("seed_tasks") if hasattr(request.data, "get") else None
            if not isinstance(rows, list):
                raise ValidationFailed('Send a "file" (JSONL) or {"seed_tasks": [...]}.')
        return Response(
            seeds.seed_tasks_import(project=project, rows=rows, user=request.user),
            status=status.HTTP_201_CREATED,
        )


class DocumentUploadApi(APIView):
    @extend_schema(operation_id="documents_upload", request=None, responses={201: dict})
    def post(self, request, project_id):
        """A PDF or text `file` becomes chunk items (optional chunk_size, chunk_overlap in characters)."""
        project = project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed(
                "Upload a PDF or text document as `file`.",
                details=[{"field": "file", "message": "Required."}],
            )
        result = documents.document_import(
            project=project,
            filename=upload.name,
            data=upload.read(),
            chunk_size=request.data.get("chunk_size"),
            chunk_overlap=request.data.get("chunk_overlap"),
            user=request.user,
        )
        return Response(result, status=status.HTTP_201_CREATED)


class CurationDevLabelApi(APIView):
    @extend_schema(operation_id="curation_dev_label", request=None, responses={200: dict})
    def post(self, request, project_id):
        """{"candidate": id, "good": true|false|null}: the admin's label for a backtranslation pair;
        answers the curator's precision and recall against the labels so far."""
        project = project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        method_stats.curation_dev_label_set(
            project=project, candidate_id=request.data.get("candidate"), good=request.data.get("good")
        )
        return Response(method_stats.curation_quality(project))


class MethodStatsApi(APIView):
    @extend_schema(operation_id="method_stats", responses={200: dict})
    def get(self, request, project_id):
        """Curator precision/recall, self-consistency calibration, judge-human agreement."""
        project = project_get(user=request.user, project_id=project_id, min_role=Role.REVIEWER)
        return Response(method_stats.methods_panel(project))
