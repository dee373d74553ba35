"""Large exports on PostgreSQL run in two processes (annotation/exports/parallel.py): the export's
process keeps the first half of the items and a forked helper exports the second half from the
same snapshot. The file (its rows, their order), the counts and the message must be those of a
one-process export; a helper that fails fails the export and leaves no file behind."""

import time
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from django.conf import settings as django_settings
from django.db import DEFAULT_DB_ALIAS, connection, connections

from annotation.exports import parallel, rows, writers
from annotation.exports.spec import export_spec_validate
from annotation.models import Annotation, Export, ReviewTask, Role
from annotation.services import exports as export_services
from annotation.services.exports import export_run

from .export_helpers import Builder, export_path, instruction_project, sentiment_project, unpack

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUILDERS = {"instruction": instruction_project, "sentiment": sentiment_project}


def run(project, user, format, file_type, settings, *, least, filters=None):
    settings.SYNTHLAB_EXPORT_PARALLEL_MIN_ITEMS = least
    settings.SYNTHLAB_EXPORT_PARALLEL_FILE_TYPES = ("jsonl", "parquet", "hf")
    parallel.LAST_HELPER.clear()
    export = Export.objects.create(
        project=project,
        format=format,
        file_type=file_type,
        filters=filters or {},
        options={},
        created_by=user,
    )
    export = export_run(export_id=export.pk)
    assert export.status == "succeeded", export.message
    return export, bool(parallel.LAST_HELPER)


def content(export, tmp_path=None):
    path = export_path(export)
    if export.file_type == "jsonl":
        return path.read_bytes()
    if export.file_type == "hf":
        folder = unpack(path, tmp_path / f"export-{export.pk}")
        dataset = datasets.load_from_disk(str(folder))
        # The card, less what names this export (its id and time, its folder's name).
        card = [
            line.replace(folder.name, "<folder>")
            for line in (folder / "README.md").read_text(encoding="utf-8").splitlines()
            if not line.startswith("Exported from SynthLab")
        ]
        return {split: dataset[split].to_list() for split in dataset}, card
    return pq.read_table(path)


def summary(export):
    counts = {k: v for k, v in export.counts.items() if k != "heartbeat_at"}
    return export.row_count, export.progress_done, export.progress_total, export.message, counts


def more_items(project, admin, make_user, n, split="train"):
    """`n` more train items, each with a decided compare (2-1 for a) and ratings 5 vs 2."""
    b = Builder(project, make_user, annotators=0)
    b.users = [m.user for m in project.memberships.filter(role=Role.ANNOTATOR).order_by("user_id")[:3]]
    for k in range(n):
        item = b.item(prompt=f"Question {k} ({split})?", external_id=f"extra-{split}-{k}", split=split)
        good, bad = b.cand(item, f"Good answer {k}."), b.cand(item, f"Bad answer {k}.", model="model-b")
        b.compare(good, bad, ["a", "a", "b"])
        b.rate(good, [5, 5, 5])
        b.rate(bad, [2, 2, 2])


@pytest.mark.parametrize(
    "kind,format,file_type",
    [
        ("instruction", "dpo", "jsonl"),
        ("instruction", "dpo", "parquet"),
        ("instruction", "kto", "jsonl"),
        ("instruction", "sft", "parquet"),
        ("instruction", "eval", "jsonl"),
        ("sentiment", "labels", "jsonl"),
        ("sentiment", "labels", "parquet"),
        ("instruction", "dpo", "hf"),
        ("sentiment", "labels", "hf"),
    ],
)
def test_a_two_process_export_writes_the_same_file_and_counts(
    admin_user, make_user, settings, tmp_path, kind, format, file_type
):
    project, _ = BUILDERS[kind](admin_user, make_user)
    if kind == "instruction":
        more_items(project, admin_user, make_user, 6, split="eval" if format == "eval" else "train")
    filters = {"split": "eval"} if format == "eval" else None
    one, forked = run(project, admin_user, format, file_type, settings, least=10**9, filters=filters)
    assert not forked
    two, forked = run(project, admin_user, format, file_type, settings, least=2, filters=filters)
    assert forked, "the export ran in two processes"
    assert one.row_count > 0
    assert summary(two) == summary(one)
    if file_type == "parquet":
        assert content(two).equals(content(one))
    else:
        assert content(two, tmp_path) == content(one, tmp_path)
    assert [p.name for p in export_path(two).parent.iterdir() if ".part" in p.name] == []


def test_both_processes_read_the_snapshot_the_export_started_with(
    admin_user, make_user, settings, monkeypatch
):
    """Votes changed by another session once the helper is forked are in neither half."""
    project, _ = instruction_project(admin_user, make_user)
    more_items(project, admin_user, make_user, 6)
    before, _ = run(project, admin_user, "dpo", "jsonl", settings, least=10**9)
    fork = parallel.os.fork

    def fork_then_flip_votes():
        pid = fork()
        if pid:  # the export's process, right after the fork: another session flips the votes
            other = connections.create_connection(DEFAULT_DB_ALIAS)
            try:
                with other.cursor() as cursor:
                    cursor.execute(
                        "UPDATE annotation_annotation SET choice = CASE choice WHEN 'a' THEN 'b' ELSE 'a' END"
                        " WHERE mode = 'compare' AND task_id IN (SELECT t.id FROM annotation_reviewtask t"
                        " JOIN annotation_item i ON i.id = t.item_id"
                        " WHERE i.project_id = %s AND i.external_id LIKE 'extra-%%')",
                        [project.pk],
                    )
            finally:
                other.close()
        return pid

    monkeypatch.setattr(parallel.os, "fork", fork_then_flip_votes)
    during, forked = run(project, admin_user, "dpo", "jsonl", settings, least=2)
    assert forked
    assert content(during) == content(before)
    monkeypatch.undo()
    after, _ = run(project, admin_user, "dpo", "jsonl", settings, least=2)
    assert content(after) != content(before), "the flipped votes count in the next export"


class SlowPart(writers.JsonlWriter):
    def close(self, *, card=""):
        time.sleep(2.0)
        super().close(card=card)


def test_progress_goes_on_while_the_helper_finishes(admin_user, make_user, settings, monkeypatch):
    """The export's process reports the helper's progress (and so keeps the heartbeat fresh) while
    it waits for the helper's half."""
    project, _ = instruction_project(admin_user, make_user)
    more_items(project, admin_user, make_user, 6)
    monkeypatch.setitem(writers.PART_WRITERS, "jsonl", SlowPart)
    seen = []
    original = export_services._Progress.__call__

    def record(self, ctx):
        seen.append((type(ctx).__name__, ctx.items, ctx.rows))
        original(self, ctx)

    monkeypatch.setattr(export_services._Progress, "__call__", record)
    export, forked = run(project, admin_user, "dpo", "jsonl", settings, least=2)
    assert forked
    total = export.progress_total
    waiting = [s for s in seen if s[0] == "_Tallies" and s[1] == total]
    assert len(waiting) >= 2, seen  # about every 0.5 s of the 2 s wait
    assert waiting[-1][2] == export.row_count


class FailingPart(writers.JsonlWriter):
    def write(self, row):
        raise OSError("disk full")


@pytest.mark.parametrize(
    "file_types, forking",
    [
        (None, {"jsonl": True, "parquet": True, "hf": True}),  # the default
        (("jsonl",), {"jsonl": True, "parquet": False}),
    ],
)
def test_which_file_types_run_in_two_processes(admin_user, make_user, settings, file_types, forking):
    """Every file type forks a helper unless the setting names fewer."""
    project, _ = instruction_project(admin_user, make_user)
    more_items(project, admin_user, make_user, 6)
    settings.SYNTHLAB_EXPORT_PARALLEL_MIN_ITEMS = 2
    if file_types is None:
        del settings.SYNTHLAB_EXPORT_PARALLEL_FILE_TYPES
    else:
        settings.SYNTHLAB_EXPORT_PARALLEL_FILE_TYPES = file_types
    for file_type, forks in forking.items():
        parallel.LAST_HELPER.clear()
        export = Export.objects.create(
            project=project, format="dpo", file_type=file_type, created_by=admin_user
        )
        assert export_run(export_id=export.pk).status == "succeeded"
        assert bool(parallel.LAST_HELPER) is forks


class FailingArrowPart(writers.ArrowPartWriter):
    """Writes its first row as a row group of its own, then fails: its stream stops after that
    group, without the end a whole stream has."""

    wrote = False

    def write(self, row):
        if self.wrote:
            raise OSError("disk full")
        super().write(row)
        self._flush()
        self.wrote = True


@pytest.mark.parametrize("file_type, part", [("jsonl", FailingPart), ("parquet", FailingArrowPart)])
def test_a_failing_helper_fails_the_export_and_leaves_no_file(
    admin_user, make_user, settings, monkeypatch, file_type, part
):
    project, _ = instruction_project(admin_user, make_user)
    more_items(project, admin_user, make_user, 6)
    monkeypatch.setitem(writers.PART_WRITERS, file_type, part)
    settings.SYNTHLAB_EXPORT_PARALLEL_MIN_ITEMS = 2
    export = Export.objects.create(project=project, format="dpo", file_type=file_type, created_by=admin_user)
    export = export_run(export_id=export.pk)
    assert export.status == "failed"
    assert "second half of the export failed" in export.message and "disk full" in export.message
    folder = Path(django_settings.EXPORT_DIR) / str(project.pk)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_answers_are_read_from_the_covering_index_alone(admin_user, make_user):
    """The export's answer query (one range of task ids, grouped per task) is answered from
    annotation_task_answers (migration 0004) without reading the table: every column it reads is in
    the index. A query that read one more column would need the table again (and a sort)."""
    project, _ = instruction_project(admin_user, make_user)
    spec = export_spec_validate(project=project, format="dpo", file_type="jsonl", filters=None, options=None)
    ids = list(ReviewTask.objects.filter(project=project).values_list("id", flat=True))
    reader = rows._Answers(Annotation.objects.filter(rows._answer_filter(spec)), connection, annotators=True)
    params = [
        min(ids) if p == rows._LOW else max(ids) if p == rows._HIGH else p for p in reader.ranged.params
    ]
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE annotation_annotation")  # as autovacuum would: pages all-visible
        cursor.execute("SET enable_seqscan = off")  # a test-sized table is otherwise read whole
        try:
            cursor.execute("EXPLAIN " + reader.ranged.sql, params)
            plan = "\n".join(line for (line,) in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")
    assert "Index Only Scan using annotation_task_answers" in plan, plan
    assert "Sort" not in plan, plan
