"""Edge cases: empty projects, unicode and very long texts, eval leaks, each filter, adjudications,
reruns and failures."""

import datetime as dt

import pyarrow.parquet as pq
import pytest
from datasets import load_from_disk
from django.utils import timezone

from annotation.models import Adjudication, Annotation, Export
from annotation.services import exports as export_services
from annotation.services.projects import project_create

from .export_helpers import Builder, export_path, instruction_project, read_jsonl, unpack
from .test_export_formats import run_export

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("file_type", ["jsonl", "parquet", "hf"])
def test_a_project_without_completed_tasks_exports_an_empty_file_with_a_clear_message(
    file_type, admin_user, make_user, tmp_path
):
    project = project_create(
        user=admin_user, data={"name": "Fresh", "modes": ["rate", "compare"], "overlap": 2}
    )
    b = Builder(project, make_user)
    item = b.item(prompt="Hello?")
    b.compare(b.cand(item, "Hi."), b.cand(item, "Hey."), ["a"], overlap=2)  # 1 of 2 votes: open
    export = run_export(project, admin_user, "dpo", file_type)
    assert export.row_count == 0
    assert "no compare/rate/edit review task on train items is complete yet" in export.message
    assert "2 annotator(s)" in export.message
    path = export_path(export)
    if file_type == "jsonl":
        assert path.read_bytes() == b""
    elif file_type == "parquet":
        table = pq.read_table(path)
        assert table.num_rows == 0 and table.column_names[:3] == ["prompt", "chosen", "rejected"]
    else:
        dataset = load_from_disk(str(unpack(path, tmp_path)))["train"]
        assert dataset.num_rows == 0 and dataset.column_names[:3] == ["prompt", "chosen", "rejected"]


TRICKY = (
    'Ünïcödé «quotes» "double" \\back\\slash\nnew line\ttab 🦜👩🏽‍💻 عربى 中文 e\u0301 \u2028 {"json": true}'
)


@pytest.mark.parametrize("file_type", ["jsonl", "parquet", "hf"])
def test_unicode_and_very_long_texts_round_trip_unchanged(file_type, admin_user, make_user, tmp_path):
    project = project_create(user=admin_user, data={"name": "Unicode", "modes": ["rate"], "overlap": 1})
    b = Builder(project, make_user, annotators=1)
    long_text = ("ñ" + "x" * 99) * 2000  # 200,000 characters
    item = b.item(prompt=TRICKY, external_id="ü-1")
    b.rate(b.cand(item, long_text + TRICKY), [5])
    other = b.item(prompt="short " + TRICKY)
    b.rate(b.cand(other, TRICKY), [4])
    export = run_export(project, admin_user, "sft", file_type)
    path = export_path(export)
    if file_type == "jsonl":
        rows = read_jsonl(path)
    elif file_type == "parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = list(load_from_disk(str(unpack(path, tmp_path)))["train"])
    assert [(r["prompt"], r["completion"], r["external_id"]) for r in rows] == [
        (TRICKY, long_text + TRICKY, "ü-1"),
        ("short " + TRICKY, TRICKY, ""),
    ]


def test_an_eval_prompt_planted_in_the_training_data_is_removed_and_counted(admin_user, make_user):
    project, _ = instruction_project(admin_user, make_user)
    for format in ("sft", "dpo", "kto", "reward", "alpaca", "openai_chat"):
        export = run_export(project, admin_user, format)
        rows = read_jsonl(export_path(export))
        assert all(r["external_id"] != "i6" for r in rows), format
        assert export.counts["eval_leaks_removed"] == 1 and export.counts["eval_leak_items"] == 1, format
        assert "Removed 1 row whose prompt is in the eval split" in export.message
    # Without the eval item the same train item is exported.
    Export.objects.all().delete()
    project.items.filter(split="eval").delete()
    rows = read_jsonl(export_path(run_export(project, admin_user, "dpo")))
    assert [r["chosen"] for r in rows if r["external_id"] == "i6"] == ["4"]


def dpo_rows(project, user, **filters):
    export = run_export(project, user, "dpo", filters=filters)
    return {(r["external_id"], r["rule"]): r for r in read_jsonl(export_path(export))}, export


def test_filters_change_which_answers_count(admin_user, make_user):
    project, cands = instruction_project(admin_user, make_user)
    everything, _ = dpo_rows(project, admin_user)
    assert set(everything) == {
        ("i1", "compare_majority"),
        ("i2", "rating_best_worst"),
        ("i3", "edit_vs_draft"),
    }

    # Only ann2's answers: i1's compare is a single "a" vote, its ratings 5 vs 1.
    ann2 = project.memberships.get(user__username__startswith="ann2").user.username
    only_ann2, _ = dpo_rows(project, admin_user, annotators=[ann2])
    assert only_ann2[("i1", "compare_majority")]["meta"].startswith('{"margin":1,"share":1.0')
    assert only_ann2[("i1", "compare_majority")]["annotator_count"] == 1

    # Open tasks too: i7 (2 of 3 votes, both "a") now makes a pair.
    with_open, _ = dpo_rows(project, admin_user, completed_only=False)
    assert with_open[("i7", "compare_majority")]["chosen"] == "Hi!"

    # Drafts by model-a only: every pair here has a model-b candidate except the edit of a model-a draft.
    model_a, export = dpo_rows(project, admin_user, models=["model-a"])
    assert set(model_a) == {("i3", "edit_vs_draft")}
    assert export.counts["dropped"]["model_filter"] == 3  # i1, i2 and the eval leak i6
    by_recipe, _ = dpo_rows(project, admin_user, recipes=["self_instruct"])
    assert set(by_recipe) == set()

    # Agreement: i1's votes split 2-1 and its ratings spread; i2 and i3 agree fully.
    agreed, export = dpo_rows(project, admin_user, min_agreement=0.9)
    assert set(agreed) == {("i3", "edit_vs_draft")} and export.counts["dropped"]["agreement_below_min"] == 2

    # Chosen candidates averaging under 4.5 go: Blue (4.0).
    rated, _ = dpo_rows(project, admin_user, min_rating=4.5)
    assert ("i2", "rating_best_worst") not in rated and ("i1", "compare_majority") in rated

    # Answers dated before the range do not count: move i1's answers a week back.
    Annotation.objects.filter(task__item__external_id="i1").update(
        created_at=timezone.now() - dt.timedelta(days=7)
    )
    recent, _ = dpo_rows(
        project, admin_user, date_from=(timezone.now() - dt.timedelta(days=1)).date().isoformat()
    )
    assert not any(key[0] == "i1" for key in recent)
    old, _ = dpo_rows(project, admin_user, date_to=(timezone.now() - dt.timedelta(days=2)).date().isoformat())
    assert set(old) == {("i1", "compare_majority")}


def test_pair_options_rules_margin_gap_and_best_vs_random(admin_user, make_user):
    project, _ = instruction_project(admin_user, make_user)
    only_edits = read_jsonl(export_path(run_export(project, admin_user, "dpo", options={"rules": ["edit"]})))
    assert [r["rule"] for r in only_edits] == ["edit_vs_draft"]
    strict = run_export(project, admin_user, "dpo", options={"min_vote_margin": 2, "min_rating_gap": 2.5})
    # i1's 2-1 vote is short of a 2-vote margin; then i1's ratings (gap 3.33) make the pair instead,
    # and i2's gap of 2 is short of 2.5.
    assert strict.counts["by_rule"] == {"edit_vs_draft": 1, "rating_best_worst": 1}
    assert strict.counts["dropped"]["margin_below_min"] >= 1
    randomised = run_export(project, admin_user, "dpo", options={"rating_pairs": "best_random", "seed": 3})
    assert randomised.counts["by_rule"]["compare_majority"] == 1
    assert randomised.counts["by_rule"].get("rating_best_random") == 1


def test_a_final_adjudication_overrides_the_annotators(admin_user, make_user):
    project, cands = instruction_project(admin_user, make_user)
    task = cands["paris"].tasks_as_a.get(mode="compare")
    Adjudication.objects.create(task=task, decision="final", value={"choice": "b"}, adjudicator=admin_user)
    rows, _ = dpo_rows(project, admin_user)
    # Ruled for Lyon: the compare pair flips, and contradicts the ratings pair, so both are dropped.
    assert ("i1", "compare_majority") not in rows
    preview = export_services.export_preview(project=project, format="dpo", options={"rules": ["compare"]})
    assert preview["rows"] == 1


def test_running_twice_does_nothing_the_second_time_and_a_dead_run_is_taken_over(admin_user, make_user):
    project, _ = instruction_project(admin_user, make_user)
    export = run_export(project, admin_user, "sft")
    assert export_services.export_run(export_id=export.pk) is None
    assert Export.objects.get(pk=export.pk).finished_at == export.finished_at

    stuck = Export.objects.create(
        project=project, format="sft", status="running", counts={"heartbeat_at": timezone.now().isoformat()}
    )
    assert export_services.export_run(export_id=stuck.pk) is None  # another worker is on it
    old_beat = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    Export.objects.filter(pk=stuck.pk).update(counts={"heartbeat_at": old_beat})
    taken = export_services.export_run(export_id=stuck.pk)
    assert taken.status == "succeeded" and taken.row_count == 3


def test_a_failing_run_is_marked_failed_with_the_reason_and_leaves_no_file(
    admin_user, make_user, settings, tmp_path
):
    project, _ = instruction_project(admin_user, make_user)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.EXPORT_DIR = str(blocker)
    export = export_services.export_create(project=project, user=admin_user, format="sft")
    done = export_services.export_run(export_id=export.pk)
    assert done.status == "failed" and done.message.startswith("The export failed:")
    assert done.file_path == "" and done.finished_at is not None
