"""Every format in every file type, loaded with `datasets` the way a training script loads it, against
projects whose review outcomes are known (see export_helpers)."""

import pytest
from datasets import load_dataset, load_from_disk

from annotation.exports.rows import PROVENANCE
from annotation.services.exports import export_create
from annotation.tasks import export_run_task

from .export_helpers import export_path, instruction_project, ner_project, sentiment_project, unpack

pytestmark = pytest.mark.django_db

PROVENANCE_COLUMNS = [name for name, _ in PROVENANCE]
FILE_TYPES = ["jsonl", "parquet", "hf"]

# format: (project, format columns, rows, eval leaks removed)
EXPECTED = {
    "sft": ("instruction", ["prompt", "completion"], 3, 1),
    "sft_messages": ("instruction", ["messages"], 3, 1),
    "dpo": ("instruction", ["prompt", "chosen", "rejected"], 3, 1),
    "dpo_messages": ("instruction", ["prompt", "chosen", "rejected"], 3, 1),
    "kto": ("instruction", ["prompt", "completion", "label"], 7, 1),
    "reward": ("instruction", ["chosen", "rejected"], 3, 1),
    "eval": ("instruction", ["prompt", "reference", "labels", "spans"], 1, 0),
    "openai_chat": ("instruction", ["messages"], 3, 1),
    "alpaca": ("instruction", ["instruction", "input", "output"], 3, 1),
    "labels": ("sentiment", ["text", "label", "labels"], 2, 0),
    "conll": ("ner", ["text", "tokens", "ner_tags", "token_starts", "token_ends"], 2, 0),
}
BUILDERS = {"instruction": instruction_project, "sentiment": sentiment_project, "ner": ner_project}


def run_export(project, user, format, file_type="jsonl", filters=None, options=None):
    export = export_create(
        project=project, user=user, format=format, file_type=file_type, filters=filters, options=options
    )
    # The Celery task's function, run here; a real worker runs it in test_export_background.
    export_run_task(export.pk)
    export.refresh_from_db()
    assert export.status == "succeeded", export.message
    return export


def load(export, tmp_path):
    path = export_path(export)
    cache = str(tmp_path / "hf-cache")
    if export.file_type == "jsonl":
        return load_dataset("json", data_files=str(path), split="train", cache_dir=cache)
    if export.file_type == "parquet":
        return load_dataset("parquet", data_files=str(path), split="train", cache_dir=cache)
    folder = unpack(path, tmp_path / "unpacked")
    dataset = load_from_disk(str(folder))
    split = "eval" if export.format == "eval" else "train"
    assert list(dataset) == [split]
    assert (folder / "README.md").is_file()
    return dataset[split]


def by_item(dataset, external_id):
    return [row for row in dataset if row["external_id"] == external_id]


@pytest.mark.parametrize("file_type", FILE_TYPES)
@pytest.mark.parametrize("format", list(EXPECTED))
def test_every_format_loads_with_datasets_with_its_columns_and_rows(
    format, file_type, admin_user, make_user, tmp_path
):
    kind, columns, rows, leaks = EXPECTED[format]
    project, _ = BUILDERS[kind](admin_user, make_user)
    export = run_export(project, admin_user, format, file_type)
    dataset = load(export, tmp_path)
    assert dataset.column_names == columns + PROVENANCE_COLUMNS
    assert dataset.num_rows == rows == export.row_count
    assert export.counts["eval_leaks_removed"] == leaks
    CHECKS[format](dataset)


def check_sft(dataset):
    assert {(r["external_id"], r["completion"], r["rule"]) for r in dataset} == {
        ("i1", "Paris.", "best_rated"),
        ("i2", "Blue.", "best_rated"),
        ("i3", "the cat", "human_edit"),
    }
    (paris,) = by_item(dataset, "i1")
    assert paris["prompt"] == "What is the capital of France?"
    assert paris["candidate_models"] == ["model-a"] and paris["candidate_recipes"] == ["candidates"]
    assert paris["annotator_count"] == 3 and 0 < paris["agreement"] < 1
    (edit,) = by_item(dataset, "i3")
    assert edit["candidate_models"] == ["human"]


def _messages_check(dataset):
    (paris,) = by_item(dataset, "i1")
    assert paris["messages"] == [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]


def check_dpo(dataset):
    rows = {r["external_id"]: r for r in dataset}
    assert set(rows) == {"i1", "i2", "i3"}
    assert (rows["i1"]["chosen"], rows["i1"]["rejected"], rows["i1"]["rule"]) == (
        "Paris.",
        "Lyon.",
        "compare_majority",
    )
    assert rows["i1"]["candidate_models"] == ["model-a", "model-b"]
    assert rows["i1"]["candidate_recipes"] == ["candidates", "self_instruct"]
    assert '"votes":{"a":2,"b":1}' in rows["i1"]["meta"]
    assert (rows["i2"]["chosen"], rows["i2"]["rejected"], rows["i2"]["rule"]) == (
        "Blue.",
        "Purple.",
        "rating_best_worst",
    )
    assert (rows["i3"]["chosen"], rows["i3"]["rejected"], rows["i3"]["rule"]) == (
        "the cat",
        "teh cat",
        "edit_vs_draft",
    )


def check_dpo_messages(dataset):
    (paris,) = by_item(dataset, "i1")
    assert paris["prompt"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert paris["chosen"] == [{"role": "assistant", "content": "Paris."}]
    assert paris["rejected"] == [{"role": "assistant", "content": "Lyon."}]


def check_kto(dataset):
    labels = sorted((r["external_id"], r["completion"], r["label"], r["rule"]) for r in dataset)
    assert labels == [
        ("i1", "Lyon.", False, "rating_undesirable"),
        ("i1", "Paris.", True, "rating_desirable"),
        ("i2", "Blue.", True, "rating_desirable"),
        ("i2", "Purple.", False, "rating_undesirable"),
        ("i3", "the cat", True, "accepted_edit"),
        ("i4", "Rain falls.", False, "both_bad"),
        ("i4", "Rain rain.", False, "both_bad"),
    ]


def check_reward(dataset):
    (paris,) = by_item(dataset, "i1")
    prompt = {"role": "user", "content": "What is the capital of France?"}
    assert paris["chosen"] == [prompt, {"role": "assistant", "content": "Paris."}]
    assert paris["rejected"] == [prompt, {"role": "assistant", "content": "Lyon."}]


def check_eval(dataset):
    (row,) = list(dataset)
    assert (row["external_id"], row["prompt"], row["reference"], row["rule"]) == (
        "e1",
        "What is 2 + 2?",
        "4",
        "best_rated",
    )
    assert row["labels"] == [] and row["spans"] == []


def check_alpaca(dataset):
    rows = {r["external_id"]: r for r in dataset}
    assert (rows["i3"]["instruction"], rows["i3"]["input"], rows["i3"]["output"]) == (
        "Fix the spelling: teh cat",
        "",
        "the cat",
    )


def check_labels(dataset):
    rows = {r["external_id"]: r for r in dataset}
    assert set(rows) == {"c1", "c4"}
    assert (rows["c1"]["text"], rows["c1"]["label"], rows["c1"]["labels"]) == (
        "I love this film.",
        "positive",
        ["positive"],
    )
    assert rows["c1"]["agreement"] == pytest.approx(2 / 3, abs=1e-3) and rows["c1"]["candidate_ids"] == []
    assert len(rows["c4"]["candidate_ids"]) == 1 and rows["c4"]["candidate_recipes"] == ["weak_label"]


def check_conll(dataset):
    rows = {r["external_id"]: r for r in dataset}
    assert rows["n1"]["tokens"] == ["Alice", "visited", "Paris", "today."]
    assert rows["n1"]["ner_tags"] == ["B-PER", "O", "B-LOC", "O"]
    assert rows["n1"]["token_starts"] == [0, 6, 14, 20] and rows["n1"]["token_ends"] == [5, 13, 19, 26]
    assert rows["n2"]["ner_tags"] == ["B-PER", "O", "O"]


CHECKS = {
    "sft": check_sft,
    "sft_messages": _messages_check,
    "dpo": check_dpo,
    "dpo_messages": check_dpo_messages,
    "kto": check_kto,
    "reward": check_reward,
    "eval": check_eval,
    "openai_chat": _messages_check,
    "alpaca": check_alpaca,
    "labels": check_labels,
    "conll": check_conll,
}


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_ner_labels_and_eval_labels(file_type, admin_user, make_user, tmp_path):
    project, _ = ner_project(admin_user, make_user)
    dataset = load(run_export(project, admin_user, "labels", file_type), tmp_path / "ner")
    assert dataset.column_names == ["text", "spans"] + PROVENANCE_COLUMNS
    rows = {r["external_id"]: r for r in dataset}
    assert rows["n1"]["spans"] == [
        {"start": 0, "end": 5, "label": "PER", "text": "Alice"},
        {"start": 14, "end": 19, "label": "LOC", "text": "Paris"},
    ]
    sentiment, _ = sentiment_project(admin_user, make_user)
    evals = load(run_export(sentiment, admin_user, "eval", file_type), tmp_path / "eval")
    assert [(r["external_id"], r["labels"], r["rule"]) for r in evals] == [
        ("c3", ["negative"], "label_majority")
    ]


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_bare_files_have_only_the_format_columns(file_type, admin_user, make_user, tmp_path):
    project, _ = instruction_project(admin_user, make_user)
    dataset = load(
        run_export(project, admin_user, "openai_chat", file_type, options={"bare": True}), tmp_path
    )
    assert dataset.column_names == ["messages"]
    assert dataset.num_rows == 3


def test_dataset_card_has_counts_filters_guidelines_rubric_and_models(admin_user, make_user, tmp_path):
    project, _ = instruction_project(admin_user, make_user)
    export = run_export(
        project, admin_user, "dpo", "hf", filters={"min_agreement": 0.1}, options={"archive": "tar"}
    )
    assert export_path(export).suffix == ".tar"
    card = (unpack(export_path(export), tmp_path) / "README.md").read_text()
    assert "| train | compare_majority | 1 |" in card and "| train | rating_best_worst | 1 |" in card
    assert "| train | edit_vs_draft | 1 |" in card
    assert "**1** rows from 1 items" in card  # the eval leak
    assert '"min_agreement": 0.1' in card
    assert "Prefer **short**, correct answers." in card
    assert "| 5 | Excellent: correct, complete, well written. |" in card
    assert "| model-a |" in card and "| model-b |" in card and "| human |" in card
