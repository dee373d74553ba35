"""The admin's method pages with the Django test client: seed task and document uploads, accepted QA
pairs moved to eval, the constitution editor, and the curator dev set's good/bad buttons (htmx)
feeding the precision/recall panel. Annotators get 403, outsiders 404; bad input gets a message and
changes nothing."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Annotation, Candidate, Item, ReviewTask
from generation import method_stats
from generation.methods import constitution as ca

from .pdfs import minimal_pdf

pytestmark = pytest.mark.django_db

SEED_FILE = Path(__file__).parents[1] / "fixtures" / "self_instruct_seed_tasks_sample.jsonl"
HTMX = {"HTTP_HX_REQUEST": "true"}


def base(project):
    return f"/projects/{project.pk}/methods/"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("", "get"),
        ("seeds/", "post"),
        ("documents/", "post"),
        ("qa-to-eval/", "post"),
        ("constitution/", "get"),
        ("constitution/", "post"),
        ("curation/", "get"),
    ],
)
def test_only_admins_use_the_method_pages(client, project, annotator, outsider, path, method):
    url = base(project) + path
    client.force_login(annotator)
    assert getattr(client, method)(url).status_code == 403
    client.force_login(outsider)
    assert getattr(client, method)(url).status_code == 404
    assert (project.options or {}).get("constitution") is None


def test_the_generate_page_links_to_the_method_inputs(client, project, admin_user):
    client.force_login(admin_user)
    html = client.get(f"/projects/{project.pk}/jobs/").content.decode()
    assert f'href="{base(project)}"' in html


def test_seed_tasks_upload_page(client, project, admin_user):
    client.force_login(admin_user)
    upload = SimpleUploadedFile("seed_tasks.jsonl", SEED_FILE.read_bytes())
    response = client.post(base(project) + "seeds/", {"file": upload}, follow=True)
    html = response.content.decode()
    assert "Seed tasks imported: 16 new, 0 updated." in html and "16 seed tasks in this project." in html
    seed = Item.objects.get(project=project, external_id="seed_task_148")
    assert seed.metadata["seed_task"]["is_classification"] is True

    broken = SimpleUploadedFile("bad.jsonl", SEED_FILE.read_bytes() + b'{"instruction": "x", oops\n')
    response = client.post(base(project) + "seeds/", {"file": broken})
    assert response.status_code == 400
    assert "Line 17 of the seed file is not valid JSON" in response.content.decode()
    missing = client.post(base(project) + "seeds/", {})
    assert missing.status_code == 400 and "This field is required." in missing.content.decode()
    assert Item.objects.filter(project=project).count() == 16


def test_document_upload_page_with_chunk_size_and_overlap(client, project, admin_user):
    client.force_login(admin_user)
    lines = [f"Line {n}: the pump moves water through the valve." for n in range(60)]
    pdf = minimal_pdf([lines[:30], lines[30:]])
    form = {"file": SimpleUploadedFile("pump.pdf", pdf), "chunk_size": 600, "chunk_overlap": 100}
    html = client.post(base(project) + "documents/", form, follow=True).content.decode()
    chunks = Item.objects.filter(project=project, metadata__has_key="document")
    assert chunks.count() > 3 and all(len(c.text) <= 600 for c in chunks)
    assert re.search(r"pump\.pdf: \d+ characters in \d+ chunks \(\d+ new, 0 updated\)", html)

    bad_overlap = {"file": SimpleUploadedFile("pump.pdf", pdf), "chunk_size": 600, "chunk_overlap": 600}
    response = client.post(base(project) + "documents/", bad_overlap)
    assert response.status_code == 400
    assert "The overlap must be smaller than the chunk size." in response.content.decode()
    junk = {"file": SimpleUploadedFile("x.pdf", b"%PDF-1.4 junk"), "chunk_size": 600, "chunk_overlap": 0}
    response = client.post(base(project) + "documents/", junk)
    assert response.status_code == 400 and "PDF" in response.content.decode()
    assert Item.objects.filter(project=project, metadata__has_key="document").count() == chunks.count()


def test_accepted_qa_pairs_move_to_the_eval_split(client, project, admin_user, annotator):
    client.force_login(admin_user)
    accepted, rejected = (
        Item.objects.create(
            project=project, text=f"Chunk {n}", metadata={"document": {"id": "d", "chunk": n}}
        )
        for n in range(2)
    )
    for item, rating in ((accepted, 5), (rejected, 2)):
        qa = Candidate.objects.create(item=item, text="Q: what? A: that.", recipe="qa_from_document")
        task = ReviewTask.objects.create(
            project=project, item=item, mode="rate", candidate_a=qa, key=f"rate:c{qa.pk}"
        )
        Annotation.objects.create(
            task=task, annotator=annotator, mode="rate", value={"rating": rating}, rating=rating
        )
    html = client.post(base(project) + "qa-to-eval/", follow=True).content.decode()
    assert "1 document chunk(s) with accepted QA pairs moved to the eval split." in html
    accepted.refresh_from_db(), rejected.refresh_from_db()
    assert (accepted.split, rejected.split) == ("eval", "train")
    again = client.post(base(project) + "qa-to-eval/", follow=True).content.decode()
    assert "No accepted QA pairs to move" in again


def test_constitution_editor(client, project, admin_user):
    client.force_login(admin_user)
    url = base(project) + "constitution/"
    page = client.get(url).content.decode()
    default = ca.constitution_for({})
    assert f"{default[0]['name']} | {default[0]['critique']}" in page.replace("&#x27;", "'")

    text = (
        "honest | Point out anything untrue in the last answer. | Rewrite the answer so it is true.\n"
        "\n"
        "Say where the answer is rude. | Rewrite it politely.\n"
    )
    html = client.post(url, {"constitution": text}, follow=True).content.decode()
    assert "Constitution saved: 2 principles." in html
    project.refresh_from_db()
    assert project.options["constitution"] == [
        {
            "name": "honest",
            "critique": "Point out anything untrue in the last answer.",
            "revision": "Rewrite the answer so it is true.",
        },
        {
            "name": "principle-2",
            "critique": "Say where the answer is rude.",
            "revision": "Rewrite it politely.",
        },
    ]

    bad = client.post(url, {"constitution": "only a critique request here"})
    assert bad.status_code == 400
    assert "Line 1: write one principle as" in bad.content.decode()
    dup = client.post(url, {"constitution": "a | c1 | r1\na | c2 | r2"})
    assert dup.status_code == 400 and "Two principles are named" in dup.content.decode()
    project.refresh_from_db()
    assert len(project.options["constitution"]) == 2  # unchanged by the bad posts

    client.post(url, {"constitution": ""})
    project.refresh_from_db()
    assert "constitution" not in project.options  # back to the default


def test_curation_dev_set_buttons_feed_precision_and_recall(client, project, admin_user):
    client.force_login(admin_user)
    item = Item.objects.create(project=project, text="Bake the bread for 40 minutes at 200 C.")
    kept = Candidate.objects.create(
        item=item,
        text="How long do I bake bread?",
        recipe="backtranslation",
        scores={"curation_score": 5, "kept": True},
    )
    dropped = Candidate.objects.create(
        item=item,
        text="Tell me about cars.",
        recipe="backtranslation",
        scores={"curation_score": 2, "kept": False},
    )
    url = base(project) + "curation/"
    page = client.get(url).content.decode()
    assert "How long do I bake bread?" in page and "0 of 2 pairs labelled" in page

    row = client.post(f"{url}{kept.pk}/", {"good": "true"}, **HTMX).content.decode()
    assert f'id="pair-{kept.pk}"' in row and 'value="true" class="primary" aria-pressed="true"' in row
    assert 'id="curation-quality" hx-swap-oob="true"' in row and "1 of 2 pairs labelled (1 good)" in row
    client.post(f"{url}{dropped.pk}/", {"good": "true"}, **HTMX)  # the curator missed a good one
    project.refresh_from_db()
    quality = method_stats.curation_quality(project)
    assert (quality["precision"], quality["recall"]) == (1.0, 0.5)
    assert "Precision <strong>100%</strong>" in client.get(url).content.decode()
    # The project page's methods panel shows the same figures.
    assert "recall <strong>50%</strong>" in client.get(f"/projects/{project.pk}/").content.decode()

    bad = client.post(f"{url}{kept.pk}/", {"good": "maybe"}, **HTMX)
    assert bad.status_code == 400 and "Label the pair good" in bad.content.decode()
    other = Candidate.objects.create(item=item, text="x", recipe="candidates")
    assert client.post(f"{url}{other.pk}/", {"good": "true"}).status_code == 404
    project.refresh_from_db()
    assert project.options["curation_dev_labels"] == {str(kept.pk): True, str(dropped.pk): True}
