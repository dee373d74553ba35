"""The import page: upload a file, check a preview of its first rows and the column mapping, then
import it. Between the preview and the import the file waits under MEDIA_ROOT/imports/pending
(named by a random token kept in the uploader's session) and is removed once imported or
cancelled; leftovers older than a day are swept on the next upload."""

import contextlib
import json
import os
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render

from synthlab.errors import SynthLabError

from .. import importing
from ..forms import ImportUploadForm
from ..models import Role
from ..services import imports as import_services
from .base import project_view

SESSION_KEY = "pending_imports"
PREVIEW_ROWS = 10
PENDING_MAX_AGE_S = 24 * 3600


def _pending_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "imports" / "pending"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sweep(directory: Path) -> None:
    cutoff = time.time() - PENDING_MAX_AGE_S
    for entry in directory.iterdir():
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()


def _pending_get(request, project, token: str | None) -> dict | None:
    pending = request.session.get(SESSION_KEY, {}).get(token or "")
    if not pending or pending["project"] != project.pk or not os.path.exists(pending["path"]):
        return None
    return pending


def _pending_drop(request, token: str) -> None:
    store = request.session.get(SESSION_KEY, {})
    pending = store.pop(token, None)
    request.session[SESSION_KEY] = store
    if pending:
        with contextlib.suppress(OSError):
            os.unlink(pending["path"])


def _mapping_from(request) -> dict[str, str]:
    return {field: request.POST.get(f"{field}_column", "") for field in import_services.MAPPABLE_FIELDS}


def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:199] + "…"


def _preview(project, pending: dict, mapping: dict | None) -> dict:
    """The first rows as read from the file and as they would be imported."""
    with open(pending["path"], "rb") as file:
        rows, keys = importing.rows_preview(
            importing.rows_read(
                file, fmt=pending["format"], txt_mode=pending["txt_mode"], header=pending["header"]
            ),
            limit=PREVIEW_ROWS,
        )
    if mapping is None:
        mapping = {field: field if field in keys else "" for field in import_services.MAPPABLE_FIELDS}
    mapping_problem = None
    try:
        checker = import_services.RowChecker(project=project, mapping=mapping)
    except SynthLabError as exc:
        mapping_problem = exc.message
        checker = import_services.RowChecker(project=project)
    raw_rows, mapped_rows = [], []
    for number, row in rows:
        if isinstance(row, dict):
            raw_rows.append({"row": number, "cells": [_cell(row[k]) if k in row else "" for k in keys]})
        else:
            raw_rows.append({"row": number, "cells": [], "problem": row.message})
        item, problems = checker.clean(number, row)
        mapped_rows.append(
            {
                "row": number,
                "item": item,
                "text": _cell(item.text or item.prompt or item.messages or "") if item else "",
                "metadata": _cell(json.loads(item.metadata)) if item and item.metadata else "",
                "reference": _cell(json.loads(item.reference)) if item and item.reference else "",
                "problems": problems,
            }
        )
    return {
        "keys": keys,
        "raw_rows": raw_rows,
        "mapped_rows": mapped_rows,
        "mapping": mapping,
        "mapping_problem": mapping_problem,
        "mappable": [(field, mapping.get(field, "")) for field in import_services.MAPPABLE_FIELDS]
        if pending["format"] != "txt"
        else [],
    }


def _preview_page(request, project, pending, token, *, mapping=None, failure=None, status=200):
    context = {
        "project": project,
        "pending": pending,
        "token": token,
        "failure": failure,
        **_preview(project, pending, mapping),
    }
    template = "annotation/import_preview.html"
    if request.htmx and request.POST.get("step") == "preview":
        template += "#mapped"
    return render(request, template, context, status=status)


@project_view(min_role=Role.ADMIN)
def project_import(request, project):
    step = request.POST.get("step", "upload") if request.method == "POST" else None
    token = request.POST.get("token", "")
    if step in ("preview", "confirm", "cancel"):
        pending = _pending_get(request, project, token)
        if pending is None:
            messages.error(request, "That upload is no longer waiting; upload the file again.")
            return redirect("annotation:project_import", project_id=project.pk)
        if step == "cancel":
            _pending_drop(request, token)
            messages.info(request, "Import cancelled; the uploaded file was removed.")
            return redirect("annotation:project_import", project_id=project.pk)
        mapping = _mapping_from(request)
        if step == "preview":
            return _preview_page(request, project, pending, token, mapping=mapping)
        try:
            with open(pending["path"], "rb") as file:
                result = import_services.items_import_file(
                    project=project,
                    file=file,
                    filename=pending["filename"],
                    fmt=pending["format"],
                    txt_mode=pending["txt_mode"],
                    header=pending["header"],
                    mapping=mapping,
                    user=request.user,
                )
        except SynthLabError as exc:
            return _preview_page(request, project, pending, token, mapping=mapping, failure=exc, status=400)
        _pending_drop(request, token)
        messages.success(
            request,
            f"Imported {pending['filename']}: {result['created']} new item(s), {result['updated']} updated.",
        )
        return redirect(project)

    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if step == "upload" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            importing.upload_size_check(size=upload.size)
            fmt = importing.format_detect(filename=upload.name, fmt=form.cleaned_data["format"] or None)
        except SynthLabError as exc:
            form.add_error("file", exc.message)
        else:
            return _upload_keep(request, project, form, upload, fmt)
    return render(
        request,
        "annotation/import.html",
        {"project": project, "form": form, "max_upload_mb": settings.MAX_UPLOAD_BYTES // 1048576},
        status=400 if form.errors else 200,
    )


def _upload_keep(request, project, form, upload, fmt):
    directory = _pending_dir()
    _sweep(directory)
    token = uuid.uuid4().hex
    path = directory / f"{token}.{fmt}"
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    pending = {
        "project": project.pk,
        "path": str(path),
        "filename": os.path.basename(upload.name),
        "format": fmt,
        "txt_mode": form.cleaned_data["txt_mode"],
        "header": bool(form.cleaned_data["header"]),
        "size": upload.size,
    }
    store = request.session.get(SESSION_KEY, {})
    store[token] = pending
    request.session[SESSION_KEY] = store
    try:
        return _preview_page(request, project, pending, token)
    except SynthLabError as exc:
        _pending_drop(request, token)
        form.add_error("file", exc.message)
        return render(request, "annotation/import.html", {"project": project, "form": form}, status=400)
