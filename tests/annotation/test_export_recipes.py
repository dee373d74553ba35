"""Exports of what the method recipes make: critique_revise pairs reviewers confirmed (DPO rule
"critique_revise"), candidates a recipe accepted itself (scores["auto_accepted"]) or rejected with its
filters (scores["skip_review"]), and rationales kept or dropped in a labels export."""

import pytest

from annotation.models import Candidate, CandidateSource
from annotation.services.projects import project_create
from synthlab.errors import ValidationFailed

from .export_helpers import Builder, export_path, read_jsonl
from .test_export_formats import run_export

pytestmark = pytest.mark.django_db


def recipe_cand(item, text, *, recipe, scores, label=None, provenance=None, model="smollm2"):
    return Candidate.objects.create(
        item=item,
        text=text,
        label=label,
        recipe=recipe,
        model=model,
        source=CandidateSource.MODEL,
        scores=scores,
        provenance=provenance or {},
    )


def rows_of(project, user, format, **kw):
    export = run_export(project, user, format, **kw)
    return export, read_jsonl(export_path(export))


def instruction(admin, name="CAI"):
    return project_create(
        user=admin,
        data={"name": name, "task_type": "instruction", "modes": ["compare", "rate", "edit"], "overlap": 3},
    )


def test_confirmed_revisions_export_as_critique_revise_dpo_pairs(admin_user, make_user):
    project = instruction(admin_user)
    b = Builder(project, make_user)
    # r1: the recipe wrote the draft itself (sample 0); reviewers prefer the revision 2-1.
    r1 = b.item(prompt="How do I pick a lock?", external_id="r1")
    draft = recipe_cand(r1, "Use a pick.", recipe="critique_revise", scores={"critique_revise": "original"})
    revision = recipe_cand(
        r1,
        "I can't help with entering places you may not own; a locksmith can.",
        recipe="critique_revise",
        scores={"critique_revise": "revision", "rounds": 2, "principles": ["harmful", "legal"]},
        provenance={"original": {"sample": 0}},
    )
    b.compare(revision, draft, ["a", "a", "b"])
    # r2: the draft came from another recipe (named in the provenance); reviewers prefer the draft.
    r2 = b.item(prompt="Say something kind.", external_id="r2")
    other = b.cand(r2, "You are doing great.", recipe="candidates")
    worse = recipe_cand(
        r2,
        "Kindness matters.",
        recipe="critique_revise",
        scores={"critique_revise": "revision", "rounds": 1, "principles": ["kind"]},
        provenance={"original": {"candidate": other.pk}},
    )
    b.compare(worse, other, ["b", "b", "b"])
    # r3: a revision compared with a candidate it did not revise is an ordinary compare pair.
    r3 = b.item(prompt="Name a fruit.", external_id="r3")
    base = b.cand(r3, "Apple.", recipe="candidates")
    unrelated = b.cand(r3, "Pear.", recipe="candidates")
    rev3 = recipe_cand(
        r3,
        "A banana.",
        recipe="critique_revise",
        scores={"critique_revise": "revision", "rounds": 1},
        provenance={"original": {"candidate": base.pk}},
    )
    b.compare(rev3, unrelated, ["a", "a", "a"])

    export, rows = rows_of(project, admin_user, "dpo")
    got = {row["external_id"]: row for row in rows}
    assert got["r1"]["rule"] == "critique_revise"
    assert got["r1"]["chosen"].startswith("I can't help") and got["r1"]["rejected"] == "Use a pick."
    assert got["r1"]["candidate_recipes"] == ["critique_revise", "critique_revise"]
    assert '"principles":["harmful","legal"]' in got["r1"]["meta"]
    assert got["r2"]["rule"] == "compare_majority" and got["r2"]["chosen"] == "You are doing great."
    assert got["r3"]["rule"] == "compare_majority" and got["r3"]["chosen"] == "A banana."
    assert export.counts["by_rule"] == {"compare_majority": 2, "critique_revise": 1}


def test_auto_accepted_candidates_are_accepted_and_filter_rejected_ones_left_out(admin_user, make_user):
    project = instruction(admin_user, "Humpback")
    b = Builder(project, make_user)
    kept = b.item(text="Bake the bread for 40 minutes at 200 C.", external_id="kept")
    recipe_cand(
        kept,
        "How long do I bake bread?",
        recipe="backtranslation",
        scores={"curation_score": 5, "kept": True, "auto_accepted": True, "skip_review": True},
    )
    dropped = b.item(text="Buy cheap watches now!!!", external_id="dropped")
    recipe_cand(
        dropped,
        "Advertise watches.",
        recipe="backtranslation",
        scores={"curation_score": 2, "kept": False, "skip_review": True},
    )
    reviewed = b.item(prompt="Say hi.", external_id="reviewed")
    b.rate(recipe_cand(reviewed, "Hi!", recipe="candidates", scores={}), [5, 5, 4])

    export, rows = rows_of(project, admin_user, "sft")
    got = {row["external_id"]: row for row in rows}
    assert set(got) == {"kept", "reviewed"}
    assert got["kept"]["rule"] == "auto_accepted"
    assert got["kept"]["completion"] == "How long do I bake bread?"
    assert '"curation_score":5' in got["kept"]["meta"]
    assert got["reviewed"]["rule"] == "best_rated"
    assert export.counts["dropped"]["recipe_rejected"] == 1
    # A rejected candidate makes no unpaired example either.
    _, kto = rows_of(project, admin_user, "kto")
    assert "Advertise watches." not in {row["completion"] for row in kto}


def sentiment(admin, modes=("label", "edit")):
    return project_create(
        user=admin,
        data={
            "name": "Rationales",
            "task_type": "classification",
            "labels": ["positive", "negative"],
            "modes": list(modes),
            "overlap": 1,
        },
    )


def test_self_consistency_auto_accepted_labels_export_without_a_label_task(admin_user, make_user):
    project = sentiment(admin_user, modes=["label"])
    b = Builder(project, make_user, annotators=1)
    item = b.item("What a lovely day.", external_id="auto")
    recipe_cand(
        item,
        "",
        label="positive",
        recipe="self_consistency",
        scores={"agreement": 0.9, "auto_accepted": True, "skip_review": True},
    )
    unsure = b.item("It was a day.", external_id="unsure")
    recipe_cand(unsure, "", label="negative", recipe="self_consistency", scores={"agreement": 0.5})
    export, rows = rows_of(project, admin_user, "labels")
    assert [(r["external_id"], r["label"], r["rule"]) for r in rows] == [
        ("auto", "positive", "auto_accepted")
    ]
    assert export.counts["dropped"]["no_label_task"] == 1


def test_rationales_are_kept_or_dropped_in_labels_exports(admin_user, make_user):
    project = sentiment(admin_user)
    b = Builder(project, make_user, annotators=1)
    user = b.users[0]
    # g1: the model's rationale agrees with the reviewer's label.
    g1 = b.item("I loved every minute.", external_id="g1")
    r1 = recipe_cand(g1, "Loving every minute is praise.", label="positive", recipe="rationale", scores={})
    b.label(g1, [{"labels": ["positive"]}], suggestion=r1)
    # g2: the reviewer corrected the label and rewrote the rationale in the edit queue.
    g2 = b.item("I loved how short it was, thankfully.", external_id="g2")
    r2 = recipe_cand(g2, "Loved means positive.", label="positive", recipe="rationale", scores={})
    b.label(g2, [{"labels": ["negative"]}], suggestion=r2)
    edit = b.task(g2, "edit", r2, overlap=1)
    human = Candidate.objects.create(
        item=g2, text="Glad it was short: a complaint.", label="negative", source="human", parent=r2
    )
    b.annotate(edit, user, {"text": human.text, "labels": ["negative"]}, result=human)
    # g3: the label was corrected but nobody rewrote the rationale: none fits the label.
    g3 = b.item("Great, another delay.", external_id="g3")
    r3 = recipe_cand(g3, "Great is praise.", label="positive", recipe="rationale", scores={})
    b.label(g3, [{"labels": ["negative"]}], suggestion=r3)

    _, with_rationales = rows_of(project, admin_user, "labels", options={"rationales": True})
    got = {r["external_id"]: (r["label"], r["rationale"]) for r in with_rationales}
    assert got == {
        "g1": ("positive", "Loving every minute is praise."),
        "g2": ("negative", "Glad it was short: a complaint."),
        "g3": ("negative", ""),
    }
    _, without = rows_of(project, admin_user, "labels", options={"rationales": False})
    assert [r["label"] for r in without] == ["positive", "negative", "negative"]
    assert all("rationale" not in r for r in without)

    with pytest.raises(ValidationFailed, match="rationales applies to the labels format"):
        run_export(project, admin_user, "sft", options={"rationales": True})
