"""Exports read items in chunks of consecutive ids (rows.CHUNK_ITEMS), each chunk's candidates, tasks
and answer counts by id range: the rows and counts must not depend on where the chunks split."""

import pytest

from annotation.exports import rows
from annotation.exports.spec import export_spec_validate

from .export_helpers import instruction_project, sentiment_project

pytestmark = pytest.mark.django_db


def export_all(project, format, filters=None):
    spec = export_spec_validate(
        project=project, format=format, file_type="jsonl", filters=filters, options=None
    )
    ctx = rows.RowContext(project=project, spec=spec, eval_hashes=rows.eval_hashes(project))
    return list(rows.export_rows(project, spec, ctx)), ctx.counts()


@pytest.mark.parametrize("format", ["dpo", "kto", "sft", "eval"])
def test_rows_are_the_same_whatever_the_chunk_size(admin_user, make_user, monkeypatch, format):
    project, _ = instruction_project(admin_user, make_user)
    # Another project's items between this one's: their candidates and tasks fall in the id ranges.
    other, _ = instruction_project(admin_user, make_user, name="Other")
    filters = {"split": "eval"} if format == "eval" else None
    whole, counts = export_all(project, format, filters=filters)
    assert whole, "the project has rows for this format"
    for size in (1, 2, 3):
        monkeypatch.setattr(rows, "CHUNK_ITEMS", size)
        assert export_all(project, format, filters=filters) == (whole, counts)
    assert {row["item_id"] for row in whole}.isdisjoint(
        {row["item_id"] for row in export_all(other, format, filters=filters)[0]}
    )


def test_label_answers_and_annotator_counts_survive_chunking(admin_user, make_user, monkeypatch):
    project, _ = sentiment_project(admin_user, make_user)
    whole, counts = export_all(project, "labels")
    assert whole and all(row["annotator_count"] >= 1 for row in whole)
    monkeypatch.setattr(rows, "CHUNK_ITEMS", 1)
    assert export_all(project, "labels") == (whole, counts)


def test_only_the_chosen_annotators_answers_are_counted(admin_user, make_user, monkeypatch):
    project, _ = instruction_project(admin_user, make_user)
    annotator = project.memberships.exclude(user=admin_user).values_list("user__username", flat=True).first()
    monkeypatch.setattr(rows, "CHUNK_ITEMS", 2)
    picked, _ = export_all(project, "dpo", filters={"annotators": [annotator], "completed_only": False})
    everyone, _ = export_all(project, "dpo", filters={"completed_only": False})
    assert all(row["annotator_count"] <= 1 for row in picked)
    assert max(row["annotator_count"] for row in everyone) > 1
