"""The import page: upload, preview (first rows, shown as text), map columns, import; and who may
import at all."""

import json
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Item

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


def pending_files(settings) -> list[str]:
    folder = Path(settings.MEDIA_ROOT) / "imports" / "pending"
    return sorted(os.listdir(folder)) if folder.exists() else []


def upload(client, project, name, content: bytes, **fields):
    data = {"step": "upload", "file": SimpleUploadedFile(name, content), "txt_mode": "lines", "header": "on"}
    return client.post(f"/projects/{project.pk}/import/", {**data, **fields})


def test_upload_preview_escaped_then_confirm_imports(browser_for, admin_user, project, settings):
    client = browser_for(admin_user)
    page = client.get(f"/projects/{project.pk}/import/")
    assert page.status_code == 200 and b"Upload and preview" in page.content
    rows = [{"text": f"<script>alert({n})</script> row {n}", "external_id": f"e{n}"} for n in range(12)]
    content = "\n".join(json.dumps(r) for r in rows).encode()
    preview = upload(client, project, "items.jsonl", content)
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "&lt;script&gt;alert(0)&lt;/script&gt; row 0" in html
    assert "<script>alert(" not in html
    assert "row 9" in html and "row 10" not in html  # the first ten rows only
    assert Item.objects.count() == 0 and len(pending_files(settings)) == 1
    token = preview.context["token"]
    done = client.post(
        f"/projects/{project.pk}/import/",
        {"step": "confirm", "token": token, "text_column": "text", "external_id_column": "external_id"},
    )
    assert done.status_code == 302 and done.url == f"/projects/{project.pk}/"
    assert Item.objects.count() == 12
    assert pending_files(settings) == []
    detail = client.get(done.url).content.decode()
    assert "Imported items.jsonl: 12 new item(s), 0 updated." in detail


def test_csv_mapping_is_chosen_in_the_preview(browser_for, admin_user, project):
    client = browser_for(admin_user)
    content = b"id,review,sentiment,stars\n1,Lovely.,positive,5\n2,Awful.,negative,1\n"
    preview = upload(client, project, "reviews.csv", content)
    html = preview.content.decode()
    for column in ("id", "review", "sentiment", "stars"):
        assert f'<option value="{column}"' in html
    token = preview.context["token"]
    mapping = {"text_column": "review", "external_id_column": "id", "label_column": "sentiment"}
    remapped = client.post(
        f"/projects/{project.pk}/import/",
        {"step": "preview", "token": token, **mapping},
        HTTP_HX_REQUEST="true",
    )
    fragment = remapped.content.decode()
    assert fragment.lstrip().startswith('<div id="mapped">') and "Lovely." in fragment
    client.post(f"/projects/{project.pk}/import/", {"step": "confirm", "token": token, **mapping})
    assert list(Item.objects.order_by("id").values_list("external_id", "text", "metadata", "reference")) == [
        ("1", "Lovely.", {"stars": "5"}, {"labels": ["positive"]}),
        ("2", "Awful.", {"stars": "1"}, {"labels": ["negative"]}),
    ]


def test_bad_rows_are_listed_and_nothing_is_stored(browser_for, admin_user, project, settings):
    client = browser_for(admin_user)
    content = b"first fine line\n\xff\xfe broken bytes\nlast fine line\n"
    preview = upload(client, project, "notes.txt", content)
    token = preview.context["token"]
    failed = client.post(f"/projects/{project.pk}/import/", {"step": "confirm", "token": token})
    assert failed.status_code == 400
    html = failed.content.decode()
    assert "nothing was imported" in html and "not UTF-8" in html
    assert Item.objects.count() == 0
    assert len(pending_files(settings)) == 1  # kept for another try
    client.post(f"/projects/{project.pk}/import/", {"step": "cancel", "token": token})
    assert pending_files(settings) == []


def test_txt_paragraphs_from_the_browser(browser_for, admin_user, project):
    client = browser_for(admin_user)
    preview = upload(client, project, "doc.txt", b"One.\nStill one.\n\nTwo.\n", txt_mode="paragraphs")
    client.post(f"/projects/{project.pk}/import/", {"step": "confirm", "token": preview.context["token"]})
    assert list(Item.objects.order_by("id").values_list("text", flat=True)) == ["One.\nStill one.", "Two."]


def test_someone_elses_upload_token_is_refused(browser_for, admin_user, make_user, project):
    client = browser_for(admin_user)
    token = upload(client, project, "a.txt", b"hello\n").context["token"]
    from django.test import Client

    other_admin = make_user("carol")
    from annotation.models import Membership

    Membership.objects.create(project=project, user=other_admin, role="admin")
    other = Client()
    other.force_login(other_admin)
    response = other.post(f"/projects/{project.pk}/import/", {"step": "confirm", "token": token})
    assert response.status_code == 302 and Item.objects.count() == 0


def test_pdf_upload_says_it_comes_later(browser_for, admin_user, project):
    response = upload(browser_for(admin_user), project, "paper.pdf", b"%PDF-1.4")
    assert response.status_code == 400 and b"PDF import comes with documents" in response.content


def test_only_admins_import(browser_for, api_client_for, annotator, outsider, project):
    url = f"/api/v1/projects/{project.pk}/import/"
    body = {"items": [{"text": "x"}]}
    assert api_client_for(annotator).post(url, body, format="json").status_code == 403
    assert api_client_for(outsider).post(url, body, format="json").status_code == 404
    anonymous = api_client_for().post(url, body, format="json")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"
    assert browser_for(annotator).get(f"/projects/{project.pk}/import/").status_code == 403
    assert browser_for(outsider).get(f"/projects/{project.pk}/import/").status_code == 404
    assert Item.objects.count() == 0
