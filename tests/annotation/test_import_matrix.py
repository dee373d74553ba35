"""Every kind of bad import row answers 400 with the row, the field and what to fix, and stores
nothing: not the good rows before it, not their candidates."""

import json

import pytest

from annotation.models import Candidate, Item, ReviewTask
from annotation.services.imports import items_import

pytestmark = pytest.mark.django_db

GOOD = {"text": "A fine film.", "external_id": "good-1", "candidates": [{"text": "positive", "model": "m"}]}
GOOD_LAST = {"text": "Dull.", "external_id": "good-2", "label": "negative"}


def jsonl(*rows) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else json.dumps(r).encode() for r in rows) + b"\n"


def upload(client, project, name, content: bytes, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        f"/api/v1/projects/{project.pk}/import/",
        {"file": SimpleUploadedFile(name, content), **fields},
        format="multipart",
    )


def assert_nothing_stored(response, *, row, field, says):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "nothing was imported" in error["message"]
    matching = [d for d in error["details"] if d["row"] == row and d["field"] == field]
    assert matching, error["details"]
    assert says.lower() in matching[0]["message"].lower()
    assert Item.objects.count() == 0
    assert Candidate.objects.count() == 0
    assert ReviewTask.objects.count() == 0


BAD_ROWS = [
    ("bad JSON", b'{"text": "cut off', "json", "not valid json"),
    ("missing text", {"external_id": "x", "split": "eval"}, "text", "no text"),
    ("blank text", {"text": "   "}, "text", "no text"),
    ("text not a string", {"text": 42}, "text", "must be a string"),
    ("unknown label", {"text": "Meh.", "label": "neutral"}, "label", "unknown label 'neutral'"),
    ("unknown candidate label", {"text": "Meh.", "candidates": [{"label": "so-so"}]}, "candidates", "so-so"),
    ("wrong split", {"text": "Meh.", "split": "test"}, "split", "train or eval, not 'test'"),
    ("not UTF-8", b'{"text": "caf\xe9"}', "encoding", "not utf-8"),
    (
        "bad messages shape",
        {"messages": [{"role": "robot", "content": "hi"}]},
        "messages",
        "message 1 needs a role",
    ),
    ("messages not a list", {"messages": "hello"}, "messages", "must be a list"),
    ("metadata not an object", {"text": "Meh.", "metadata": [1, 2]}, "metadata", "must be an object"),
    ("not an object", b'["just", "a", "list"]', "item", "json object"),
]


@pytest.mark.parametrize(("case", "bad", "field", "says"), BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_a_bad_row_names_row_and_field_and_stores_nothing(
    api_client_for, admin_user, project, case, bad, field, says
):
    response = upload(api_client_for(admin_user), project, "items.jsonl", jsonl(GOOD, bad, GOOD_LAST))
    assert_nothing_stored(response, row=2, field=field, says=says)


def test_duplicate_external_id_in_the_file_names_both_rows(api_client_for, admin_user, project):
    content = jsonl(GOOD, {"text": "Again.", "external_id": "good-1"}, GOOD_LAST)
    response = upload(api_client_for(admin_user), project, "items.jsonl", content)
    assert_nothing_stored(response, row=2, field="external_id", says="already appears on row 1")


def test_text_over_the_size_limit_is_refused(api_client_for, admin_user, project, settings):
    settings.SYNTHLAB_MAX_TEXT_CHARS = 50
    content = jsonl(GOOD, {"text": "x" * 51}, GOOD_LAST)
    response = upload(api_client_for(admin_user), project, "items.jsonl", content)
    assert_nothing_stored(response, row=2, field="text", says="the limit is 50")


def test_upload_over_the_size_limit_is_refused(api_client_for, admin_user, project, settings):
    settings.MAX_UPLOAD_BYTES = 100
    response = upload(api_client_for(admin_user), project, "items.jsonl", jsonl(*[GOOD_LAST] * 5))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "too_large" and "limited to" in error["message"]
    assert error["details"][0]["field"] == "file"
    assert Item.objects.count() == 0


def test_pdf_is_refused_with_a_clear_message(api_client_for, admin_user, project):
    response = upload(api_client_for(admin_user), project, "paper.pdf", b"%PDF-1.4 ...")
    assert response.status_code == 400
    assert "PDF import comes with documents" in response.json()["error"]["message"]


def test_many_bad_rows_are_all_reported_in_row_order(api_client_for, admin_user, project):
    content = jsonl({"text": "ok"}, {"split": "x"}, b"{oops", {"text": "ok", "label": "nope"}, {"text": "ok"})
    response = upload(api_client_for(admin_user), project, "items.jsonl", content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("4 problems were found; nothing was imported. First: row 2")
    assert [(d["row"], d["field"]) for d in error["details"]] == [
        (2, "text"),
        (2, "split"),
        (3, "json"),
        (4, "label"),
    ]


def test_problems_are_capped_at_one_hundred(api_client_for, admin_user, project):
    content = jsonl(*[{"text": "ok", "split": "dev"}] * 150)
    response = upload(api_client_for(admin_user), project, "items.jsonl", content)
    error = response.json()["error"]
    assert len(error["details"]) == 100
    assert error["message"].startswith("At least 100 problems")


def test_a_json_body_with_a_bad_item_stores_nothing(api_client_for, admin_user, project):
    response = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/import/",
        {"items": [GOOD, "not an object", GOOD_LAST]},
        format="json",
    )
    assert_nothing_stored(response, row=2, field="item", says="must be an object")


def test_a_bad_row_after_written_batches_rolls_them_back(project):
    rows = [(n, {"text": f"row {n}", "candidates": [{"text": "c"}]}) for n in range(1, 8)]
    rows.append((8, {"text": "bad", "split": "holdout"}))
    from synthlab.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as failed:
        items_import(project=project, rows=rows, batch_size=2)
    assert [(d["row"], d["field"]) for d in failed.value.details] == [(8, "split")]
    assert Item.objects.count() == 0 and Candidate.objects.count() == 0 and ReviewTask.objects.count() == 0


def test_duplicates_are_found_across_batches_and_after_the_first_error(project):
    from synthlab.errors import ValidationFailed

    rows = [
        (1, {"text": "a", "external_id": "a"}),
        (2, {"text": "b", "external_id": "b"}),
        (3, {"text": "c", "external_id": "c"}),
        (4, {"text": "a again", "external_id": "a"}),  # a was written by an earlier batch
        (5, {"text": "bad", "split": "?"}),
        (6, {"text": "d", "external_id": "d"}),
        (7, {"text": "d again", "external_id": "d"}),  # after the error: d was never written
    ]
    with pytest.raises(ValidationFailed) as failed:
        items_import(project=project, rows=rows, batch_size=3)
    assert [(d["row"], d["field"]) for d in failed.value.details] == [
        (4, "external_id"),
        (5, "split"),
        (7, "external_id"),
    ]
    assert Item.objects.count() == 0


def test_text_the_database_cannot_store_is_refused(api_client_for, admin_user, project):
    # PostgreSQL refuses NUL characters and unpaired surrogates; both databases answer the same.
    client = api_client_for(admin_user)
    response = upload(client, project, "items.jsonl", jsonl(GOOD, {"text": "a\u0000b"}, GOOD_LAST))
    assert_nothing_stored(response, row=2, field="text", says="NUL character")
    response = upload(
        client, project, "items.jsonl", jsonl(GOOD, {"text": "ok", "metadata": {"x": "\u0000"}})
    )
    assert_nothing_stored(response, row=2, field="metadata", says="NUL character")
    body = b'{"items": [{"text": "fine"}, {"text": "broken \\ud800 text"}]}'
    response = client.post(f"/api/v1/projects/{project.pk}/import/", body, content_type="application/json")
    assert_nothing_stored(response, row=2, field="text", says="unpaired surrogate")


def test_an_oversized_json_body_points_to_a_file_upload(api_client_for, admin_user, project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    response = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/import/", {"items": [GOOD_LAST] * 20}, format="json"
    )
    assert response.status_code == 400
    assert "upload large imports as a .jsonl file" in response.json()["error"]["message"]
    assert Item.objects.count() == 0
