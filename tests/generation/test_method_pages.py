"""What admins see for the methods: seed and document uploads through the API, the curator's
precision/recall against a hand-labelled dev set, calibration, judge-human agreement beside
human-human agreement, and the nearest instructions next to a self-instruct candidate."""

import json
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Template

from annotation.models import Annotation, Candidate, Item, Membership, ReviewTask, Role
from annotation.services.tasks import review_tasks_sync
from generation import method_stats

from .pdfs import minimal_pdf

SEED_FILE = Path(__file__).parents[1] / "fixtures" / "self_instruct_seed_tasks_sample.jsonl"


def test_seed_tasks_upload(project, admin_user, annotator, api_client_for):
    url = f"/api/v1/projects/{project.pk}/seed-tasks/"
    upload = SimpleUploadedFile("seed_tasks.jsonl", SEED_FILE.read_bytes())
    response = api_client_for(admin_user).post(url, {"file": upload}, format="multipart")
    assert response.status_code == 201 and response.json()["created"] == 16
    seed = Item.objects.get(project=project, external_id="seed_task_148")
    assert seed.metadata["seed_task"]["is_classification"] is True
    bad = api_client_for(admin_user).post(url, {"seed_tasks": [{"instances": []}]}, format="json")
    assert bad.status_code == 400 and "needs an instruction" in bad.json()["error"]["message"]
    assert api_client_for(annotator).post(url, {"seed_tasks": []}, format="json").status_code == 403


def test_document_upload_makes_chunk_items_with_spans(project, admin_user, api_client_for):
    lines = [f"Line {n}: the pump moves water through the valve." for n in range(60)]
    pdf = minimal_pdf([lines[:30], lines[30:]])
    url = f"/api/v1/projects/{project.pk}/documents/"
    response = api_client_for(admin_user).post(
        url,
        {"file": SimpleUploadedFile("pump.pdf", pdf), "chunk_size": 600, "chunk_overlap": 100},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    chunks = list(
        Item.objects.filter(project=project, metadata__document__id=body["document"]).order_by("id")
    )
    assert len(chunks) == body["chunks"] > 3
    assert all(len(c.text) <= 600 for c in chunks)
    first = chunks[0].metadata["document"]
    assert first["name"] == "pump.pdf" and first["start"] == 0 and first["end"] == len(chunks[0].text)
    again = api_client_for(admin_user).post(
        url,
        {"file": SimpleUploadedFile("pump.pdf", pdf), "chunk_size": 600, "chunk_overlap": 100},
        format="multipart",
    )
    assert again.json()["created"] == 0  # same file: chunks updated, not duplicated
    broken = api_client_for(admin_user).post(
        url, {"file": SimpleUploadedFile("x.pdf", b"%PDF-1.4 junk")}, format="multipart"
    )
    assert broken.status_code == 400 and "PDF" in broken.json()["error"]["message"]


def test_curator_precision_and_recall_against_the_dev_set(project, admin_user, api_client_for):
    items = Item.objects.bulk_create([Item(project=project, text=f"text {n}") for n in range(4)])
    kept = [True, True, False, False]
    cands = [
        Candidate.objects.create(
            item=i,
            text="instr",
            recipe="backtranslation",
            scores={"kept": k, "curation_score": 5 if k else 2},
        )
        for i, k in zip(items, kept, strict=True)
    ]
    url = f"/api/v1/projects/{project.pk}/curation-dev-labels/"
    client = api_client_for(admin_user)
    for cand, good in zip(cands, [True, False, True, False], strict=True):
        response = client.post(url, {"candidate": cand.pk, "good": good}, format="json")
    assert response.json()["precision"] == 0.5 and response.json()["recall"] == 0.5
    project.refresh_from_db()
    html = Template("{% load method_tags %}{% methods_stats project %}").render(Context({"project": project}))
    assert "Precision <strong>50%</strong>, recall <strong>50%</strong>" in html


def test_judge_agreement_beside_human_agreement(project, admin_user, annotator, make_user):
    carol = make_user("carol")
    Membership.objects.create(project=project, user=carol, role=Role.ANNOTATOR)
    project.overlap = 2
    project.save()
    item = Item.objects.create(project=project, prompt="Name a fruit")
    cand = Candidate.objects.create(
        item=item, text="An apple.", scores={"judge": {"rating": 4, "annotator": "model-judge"}}
    )
    review_tasks_sync(project=project, item_ids=[item.pk])
    task = ReviewTask.objects.get(item=item, mode="rate", candidate_a=cand)
    Annotation.objects.create(task=task, annotator=annotator, mode="rate", value={"rating": 4}, rating=4)
    Annotation.objects.create(task=task, annotator=carol, mode="rate", value={"rating": 3}, rating=3)
    stats = method_stats.judge_agreement(project)["rate"]
    assert stats["judge_human"]["n"] == 2 and stats["judge_human"]["agreement"] == 0.5
    assert stats["human_human"]["n"] == 1 and stats["human_human"]["agreement"] == 0.0


def test_calibration_counts_reviewer_labels_on_auto_accept_grade_items(project, annotator):
    item = Item.objects.create(project=project, text="I loved it")
    Candidate.objects.create(
        item=item,
        label="positive",
        recipe="self_consistency",
        scores={"route": "auto_accept", "calibration_sample": True, "agreement": 1.0},
    )
    review_tasks_sync(project=project, item_ids=[item.pk])
    task = ReviewTask.objects.get(item=item, mode="label")
    Annotation.objects.create(task=task, annotator=annotator, mode="label", value={"labels": ["positive"]})
    assert method_stats.calibration(project)["rate"] == 1.0


def test_nearest_instructions_are_shown_as_text():
    cand = Candidate(
        scores={"max_rouge_l": 0.42, "nearest": [{"instruction": "<b>Sort</b> the list", "rouge_l": 0.42}]}
    )
    html = Template("{% load method_tags %}{% nearest_instructions cand %}").render(Context({"cand": cand}))
    assert "&lt;b&gt;Sort&lt;/b&gt; the list" in html and "0.42" in html
    assert json.dumps(0.42) in html
