"""Export pages: the list with the export form and a live row-count preview (admins), an export's
status page (live over a websocket where a shared channel layer exists, polled otherwise), and the
download."""

import json

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from synthlab.errors import SynthLabError

from .. import selectors
from ..api.exports import export_file_response
from ..exports import selectors as export_selectors
from ..exports.forms import ExportForm
from ..exports.rows import FORMATS
from ..models import Export, ExportStatus, Role
from ..services import exports as export_services
from .base import project_view


def live_websocket() -> bool:
    """Progress is pushed only through a channel layer shared between processes; the in-memory
    layer of the embedded default does not reach the worker, so pages poll there."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return bool(backend) and not backend.endswith("InMemoryChannelLayer")


def export_status_context(export: Export, *, ws: bool) -> dict:
    finished = export.status in (ExportStatus.SUCCEEDED, ExportStatus.FAILED)
    total = export.progress_total
    return {
        "export": export,
        "ws": ws,
        "finished": finished,
        "percent": 100 if finished else (round(100 * export.progress_done / total) if total else 0),
        "counts": export.counts if finished else {},
        "download_url": reverse(
            "annotation:export_download", kwargs={"project_id": export.project_id, "export_id": export.pk}
        )
        if export.status == ExportStatus.SUCCEEDED
        else None,
    }


def _export_of(project, export_id) -> Export:
    export = export_selectors.export_list(project=project).filter(pk=export_id).first()
    if export is None:
        raise Http404("No such export.")
    return export


@project_view()
def export_list(request, project):
    is_admin = selectors.role_at_least(project.current_role, Role.ADMIN)
    form = ExportForm(request.POST or None, project=project) if is_admin else None
    if request.method == "POST":
        if not is_admin:
            return HttpResponseForbidden("Only project admins create exports.")
        if form.is_valid():
            try:
                export = export_services.export_create(
                    project=project, user=request.user, **form.to_service_data()
                )
            except SynthLabError as exc:
                form.add_service_errors(exc)
            else:
                export.refresh_from_db()
                if export.status == ExportStatus.FAILED:
                    messages.error(request, export.message)
                else:
                    messages.success(request, f"Export {export.pk} queued.")
                return redirect("annotation:export_detail", project_id=project.pk, export_id=export.pk)
    page = Paginator(export_selectors.export_list(project=project), 25).get_page(request.GET.get("page"))
    context = {"project": project, "is_admin": is_admin, "form": form, "page": page, "formats": FORMATS}
    return render(request, "annotation/exports.html", context)


@require_POST
@project_view(min_role=Role.ADMIN)
def export_preview(request, project):
    """How many rows the form's export would have (an htmx partial)."""
    form = ExportForm(request.POST, project=project)
    preview, error = None, None
    if form.is_valid():
        try:
            preview = export_services.export_preview(project=project, **form.to_service_data())
        except SynthLabError as exc:
            error = exc.message
    else:
        error = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items())
    return render(request, "annotation/exports.html#preview", {"preview": preview, "error": error})


@project_view()
def export_detail(request, project, export_id):
    export = _export_of(project, export_id)
    context = export_status_context(export, ws=live_websocket())
    if request.htmx and request.GET.get("partial") == "status":
        context["ws"] = False
        return render(request, "annotation/export_detail.html#status", context)
    context |= {
        "project": project,
        "format": FORMATS.get(export.format),
        "filters_json": json.dumps(export.filters, ensure_ascii=False, sort_keys=True),
        "options_json": json.dumps(export.options, ensure_ascii=False, sort_keys=True),
    }
    return render(request, "annotation/export_detail.html", context)


@project_view()
def export_download(request, project, export_id):
    export = _export_of(project, export_id)
    try:
        return export_file_response(export)
    except SynthLabError as exc:
        messages.error(request, exc.message)
        return redirect("annotation:export_detail", project_id=project.pk, export_id=export.pk)
