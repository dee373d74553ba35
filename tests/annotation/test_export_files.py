"""Export files follow their rows: deleting an export (admin) removes its file, deleting a project
(API) removes its export folder, after the deletion commits; other projects' files stay."""

import logging
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from annotation.models import Export, Project

from .export_helpers import export_path, ner_project, sentiment_project
from .test_export_formats import run_export

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_projects(admin_user, make_user):
    mine, _ = sentiment_project(admin_user, make_user)
    other, _ = ner_project(admin_user, make_user)
    return mine, other


def test_deleting_an_export_removes_its_file_only(
    two_projects, admin_user, django_capture_on_commit_callbacks
):
    mine, other = two_projects
    gone, kept, theirs = (
        run_export(mine, admin_user, "labels"),
        run_export(mine, admin_user, "labels", file_type="parquet"),
        run_export(other, admin_user, "labels"),
    )
    assert all(export_path(e).is_file() for e in (gone, kept, theirs))

    with django_capture_on_commit_callbacks(execute=True):
        gone.delete()  # what the Django admin does
    assert not export_path(gone).exists()
    assert export_path(kept).is_file() and export_path(theirs).is_file()
    assert list(Export.objects.order_by("pk")) == [kept, theirs]


def test_deleting_a_project_through_the_api_removes_its_export_folder(
    two_projects, admin_user, api_client_for, django_capture_on_commit_callbacks
):
    mine, other = two_projects
    export = run_export(mine, admin_user, "labels")
    theirs = run_export(other, admin_user, "labels")
    folder = Path(settings.EXPORT_DIR) / str(mine.pk)
    (folder / "left-over.jsonl.part").write_text("{}\n")  # e.g. an export that never finished

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(admin_user).delete(f"/api/v1/projects/{mine.pk}/")
    assert response.status_code == 204
    assert not folder.exists() and not export_path(export).exists()
    assert export_path(theirs).is_file()
    assert list(Project.objects.all()) == [other] and list(Export.objects.all()) == [theirs]


def test_a_rolled_back_delete_keeps_the_file(two_projects, admin_user, django_capture_on_commit_callbacks):
    mine, _ = two_projects
    export = run_export(mine, admin_user, "labels")
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        mine.delete()
        raise RuntimeError("something after the delete failed")
    assert Export.objects.filter(pk=export.pk).exists() and export_path(export).is_file()


def test_a_missing_or_stuck_file_does_not_undo_the_delete(
    two_projects, admin_user, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    mine, other = two_projects
    missing = run_export(mine, admin_user, "labels")
    export_path(missing).unlink()
    with django_capture_on_commit_callbacks(execute=True):
        missing.delete()
    assert not Export.objects.filter(pk=missing.pk).exists()

    stuck = run_export(other, admin_user, "labels")

    def refuse(self, missing_ok=False):
        raise PermissionError("read-only disk")

    monkeypatch.setattr(Path, "unlink", refuse)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        stuck.delete()
    assert not Export.objects.filter(pk=stuck.pk).exists()  # the delete stands
    assert export_path(stuck).is_file() and "could not remove" in caplog.text


def test_an_export_deleted_while_it_runs_leaves_no_file(
    two_projects, admin_user, monkeypatch, django_capture_on_commit_callbacks
):
    from annotation.exports.rows import RowContext
    from annotation.services import exports

    mine, _ = two_projects
    export = exports.export_create(project=mine, user=admin_user, format="labels", file_type="jsonl")
    counts = RowContext.counts

    def delete_then_count(ctx):
        Export.objects.filter(pk=export.pk).delete()  # someone deletes it in the admin meanwhile
        return counts(ctx)

    # Once the rows are written, before the export is marked done.
    monkeypatch.setattr(RowContext, "counts", delete_then_count)
    with django_capture_on_commit_callbacks(execute=True):
        assert exports.export_run(export_id=export.pk) is None
    folder = Path(settings.EXPORT_DIR) / str(mine.pk)
    assert not Export.objects.filter(pk=export.pk).exists()
    assert not folder.exists() or list(folder.iterdir()) == []
