"""Exports read items in chunks of consecutive ids (rows.CHUNK_ITEMS), each chunk's candidates, tasks
and answer counts by id range: the rows and counts must not depend on where the chunks split."""

import pytest
from django.db import connection

from annotation.exports import rows
from annotation.exports.spec import export_spec_validate
from annotation.models import Annotation, ReviewTask

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
    # A JSONL export reads JSONL_CHUNK_FACTOR times CHUNK_ITEMS items at a time.
    for size, factor in ((1, 1), (2, 1), (3, 1), (1, 2), (2, 2)):
        monkeypatch.setattr(rows, "CHUNK_ITEMS", size)
        monkeypatch.setattr(rows, "JSONL_CHUNK_FACTOR", factor)
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


def test_answers_of_tasks_far_apart_are_asked_for_by_list(admin_user, make_user):
    """A chunk's answers are read over the range of its task ids, or by list when the ids are far
    apart: both give each task its answers (codes and who answered), nothing for a task without."""
    project, _ = instruction_project(admin_user, make_user)
    spec = export_spec_validate(project=project, format="dpo", file_type="jsonl", filters=None, options=None)
    answered = Annotation.objects.filter(rows._answer_filter(spec))
    tasks = list(ReviewTask.objects.filter(project=project).order_by("id").values_list("id", "mode"))
    ids = [tid for tid, _ in tasks]
    reader = rows._Answers(answered, connection, annotators=True)
    by_range = reader.fetch(ids)
    far = max(ids) + 10 * len(ids) + 100_000  # no such task: forces the by-list query
    by_list = reader.fetch(ids + [far])
    assert by_list == by_range and far not in by_list
    compare = next(tid for tid, mode in tasks if mode == "compare" and tid in by_range)
    task_id, codes, who = by_range[compare]
    assert task_id == compare
    votes = Annotation.objects.filter(task_id=compare)
    assert sorted(codes) == sorted(rows._CHOICE_CODES[v.choice] for v in votes)
    assert sorted(who.split(",")) == sorted(str(v.annotator_id) for v in votes)
    assert dict(rows._answers_of(codes)[0]) == {
        choice: n for choice in rows._CHOICE_CODES if (n := sum(v.choice == choice for v in votes))
    }


def test_answer_codes_decode_to_votes_in_choice_order_and_ratings_ascending():
    assert rows._answers_of("xbat5a") == ((("a", 2), ("b", 1), ("tie", 1), ("both_bad", 1)), (5,))
    assert rows._answers_of("515") == ((), (1, 5, 5))
    assert rows._answers_of(None) == rows._answers_of("") == ((), ())
