from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from synthlab.errors import ValidationFailed

from .. import importing, selectors
from ..models import Role
from ..services import imports as import_services

ImportResultSerializer = inline_serializer(
    "ImportResult", {"created": serializers.IntegerField(), "updated": serializers.IntegerField()}
)
ImportUploadSerializer = inline_serializer(
    "ImportUpload",
    {
        "file": serializers.FileField(help_text=".jsonl, .json, .csv, .tsv or .txt (UTF-8)."),
        "format": serializers.ChoiceField(
            choices=importing.FORMATS, required=False, help_text="Default: from the file's extension."
        ),
        "txt_mode": serializers.ChoiceField(
            choices=importing.TXT_MODES,
            required=False,
            help_text=".txt: one item per non-empty line (default) or per blank-line separated paragraph.",
        ),
        "header": serializers.BooleanField(
            required=False, help_text="CSV/TSV: the first row names the columns (default true)."
        ),
        **{
            f"{field}_column": serializers.CharField(
                required=False, help_text=f"The CSV column or JSON key that holds {field}."
            )
            for field in import_services.MAPPABLE_FIELDS
        },
    },
)
ImportItemsSerializer = inline_serializer(
    "ImportItems",
    {
        "items": serializers.ListField(child=serializers.JSONField()),
        "mapping": serializers.DictField(child=serializers.CharField(), required=False),
    },
)

_TRUE = {"1", "true", "yes", "on"}


class ImportApi(APIView):
    """Imports items from a file upload or a JSON body; all or nothing."""

    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportUploadSerializer, "application/json": ImportItemsSerializer},
        responses={200: ImportResultSerializer},
        description=(
            "An item has `text`, `prompt` or `messages` ([{role, content}]), and optionally `external_id`, "
            "`metadata`, `split` (train|eval), `candidates` ([{text, label, model}]) and a reference "
            "(`label`/`labels`, `spans`, `answer`). Other keys or CSV columns go to metadata. Re-importing "
            "an external_id updates that item. One bad row answers 400 with a detail per problem "
            "({row, field, message}; rows are line numbers, or item positions in a .json array) and "
            "imports nothing."
        ),
        examples=[
            OpenApiExample("JSON body", value={"items": [{"text": "Great film.", "label": "positive"}]})
        ],
    )
    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if request.content_type.startswith("multipart/"):
            # Refuse an oversized upload before reading it; the file's own size is checked again below.
            importing.upload_size_check(size=length - 1024 * 1024 if length > 1024 * 1024 else None)
            return Response(self._import_file(request, project))
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise ValidationFailed(
                f"A JSON body is limited to {settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1048576} MB; upload large "
                "imports as a .jsonl file (multipart field `file`).",
                code="too_large",
                details=[{"row": None, "field": "items", "message": "Body too large."}],
            )
        data = request.data if isinstance(request.data, dict) else {}
        items = data.get("items")
        if not isinstance(items, list):
            raise ValidationFailed(
                'Send a file (multipart field `file`) or a JSON body {"items": [...]}.',
                details=[{"row": None, "field": "items", "message": "Expected a list of items."}],
            )
        mapping = data.get("mapping")
        if mapping is not None and not isinstance(mapping, dict):
            raise ValidationFailed(
                'mapping must be an object like {"text": "sentence"}.',
                details=[{"row": None, "field": "mapping", "message": "Expected an object."}],
            )
        result = import_services.items_import(
            project=project, rows=enumerate(items, start=1), user=request.user, mapping=mapping
        )
        return Response(result)

    def _import_file(self, request, project) -> dict:
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationFailed(
                "Attach the file to import as the multipart field `file`.",
                details=[{"row": None, "field": "file", "message": "No file."}],
            )
        data = request.data
        mapping = {field: data.get(f"{field}_column") for field in import_services.MAPPABLE_FIELDS}
        header = str(data.get("header", "true")).strip().lower() in _TRUE
        upload.seek(0)
        try:
            return import_services.items_import_file(
                project=project,
                file=upload.file,
                filename=upload.name,
                fmt=data.get("format") or None,
                txt_mode=data.get("txt_mode") or "lines",
                header=header,
                mapping=mapping,
                user=request.user,
                size=upload.size,
            )
        finally:
            upload.close()
