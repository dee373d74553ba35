"""Exports API: create (202, runs in the background), preview the row count, list, status and
download. Project admins create and preview; any member lists, reads and downloads; an export of a
project the caller does not belong to answers 404."""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from synthlab.errors import Conflict, ServiceUnavailable

from .. import selectors
from ..exports import selectors as export_selectors
from ..exports.rows import FORMATS
from ..exports.spec import FILE_TYPES, FILTER_KEYS, OPTION_KEYS
from ..models import Export, ExportStatus, Role
from ..services import exports as export_services

CONTENT_TYPES = {
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".zip": "application/zip",
    ".tar": "application/x-tar",
}


class ExportSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    progress = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id",
            "project",
            "format",
            "file_type",
            "filters",
            "options",
            "status",
            "row_count",
            "counts",
            "progress",
            "message",
            "download_url",
            "created_by",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, export) -> dict:
        return {"done": export.progress_done, "total": export.progress_total}

    def get_download_url(self, export) -> str | None:
        if export.status != ExportStatus.SUCCEEDED:
            return None
        request = self.context.get("request")
        path = f"/api/v1/exports/{export.pk}/download/"
        return request.build_absolute_uri(path) if request else path


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(FORMATS))
    file_type = serializers.ChoiceField(choices=FILE_TYPES, default="jsonl")
    filters = serializers.DictField(
        required=False, default=dict, help_text=f"Keys: {', '.join(FILTER_KEYS)}."
    )
    options = serializers.DictField(
        required=False, default=dict, help_text=f"Keys: {', '.join(OPTION_KEYS)}."
    )


PreviewSerializer = inline_serializer(
    "ExportPreview",
    {
        "rows": serializers.IntegerField(),
        "exact": serializers.BooleanField(),
        "estimated_rows": serializers.IntegerField(),
        "items_scanned": serializers.IntegerField(),
        "items_total": serializers.IntegerField(),
        "by_rule": serializers.DictField(child=serializers.IntegerField()),
        "dropped": serializers.DictField(child=serializers.IntegerField()),
        "eval_leaks_removed": serializers.IntegerField(),
        "message": serializers.CharField(),
    },
)


def _request_data(request) -> dict:
    body = ExportRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


class ExportListApi(GenericAPIView):
    serializer_class = ExportSerializer

    @extend_schema(operation_id="projects_exports_list", responses=ExportSerializer(many=True))
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id)
        page = self.paginate_queryset(export_selectors.export_list(project=project))
        return self.get_paginated_response(
            ExportSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(request=ExportRequestSerializer, responses={202: ExportSerializer})
    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        export = export_services.export_create(project=project, user=request.user, **_request_data(request))
        export.refresh_from_db()
        if export.status == ExportStatus.FAILED:
            raise ServiceUnavailable(export.message)
        return Response(
            ExportSerializer(export, context={"request": request}).data, status=status.HTTP_202_ACCEPTED
        )


class ExportPreviewApi(GenericAPIView):
    serializer_class = ExportRequestSerializer

    @extend_schema(request=ExportRequestSerializer, responses=PreviewSerializer)
    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        return Response(export_services.export_preview(project=project, **_request_data(request)))


class ExportDetailApi(GenericAPIView):
    serializer_class = ExportSerializer

    def get(self, request, export_id):
        export = export_selectors.export_get(user=request.user, export_id=export_id)
        return Response(ExportSerializer(export, context={"request": request}).data)


class ExportDownloadApi(GenericAPIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, export_id):
        export = export_selectors.export_get(user=request.user, export_id=export_id)
        return export_file_response(export)


def export_file_response(export: Export) -> FileResponse:
    """The export's file, streamed from disk in blocks (never read into memory)."""
    if export.status != ExportStatus.SUCCEEDED:
        raise Conflict(f"The export is {export.status}; download it once it has succeeded.")
    path = export_selectors.export_file(export=export)
    if path is None:
        raise Conflict("The export's file is gone from the server; run the export again.")
    return FileResponse(
        open(path, "rb"),  # noqa: SIM115 (FileResponse closes it)
        as_attachment=True,
        filename=path.name,
        content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
    )
