"""Each accepted format imports what a user would expect, re-imports update instead of duplicating,
and imported candidates and labels become review tasks."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.models import Candidate, Item, ReviewTask
from annotation.validation import content_hash

pytestmark = pytest.mark.django_db


def post_file(client, project, name, content: bytes, **fields):
    return client.post(
        f"/api/v1/projects/{project.pk}/import/",
        {"file": SimpleUploadedFile(name, content), **fields},
        format="multipart",
    )


def texts(project):
    return list(Item.objects.filter(project=project).order_by("id").values_list("text", flat=True))


def test_jsonl_with_all_item_fields(api_client_for, admin_user, project):
    rows = [
        {
            "text": "Loved every minute.",
            "external_id": "r1",
            "split": "eval",
            "metadata": {"source": "imdb"},
            "lang": "en",
            "label": "positive",
        },
        {"prompt": "Summarise the plot.", "external_id": "r2"},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]},
    ]
    content = "\n".join(json.dumps(r) for r in rows).encode()
    response = post_file(api_client_for(admin_user), project, "items.jsonl", content)
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 3, "updated": 0}
    first, second, third = Item.objects.filter(project=project).order_by("id")
    assert (first.external_id, first.split, first.reference) == ("r1", "eval", {"labels": ["positive"]})
    assert first.metadata == {"source": "imdb", "lang": "en"}
    assert first.content_hash == content_hash("Loved every minute.")
    assert (second.prompt, second.split, second.content_hash) == (
        "Summarise the plot.",
        "train",
        content_hash("Summarise the plot."),
    )
    assert third.messages[1] == {"role": "user", "content": "Hi there"}
    assert third.external_id is None and third.content_hash == content_hash("Hi there")


def test_json_array_and_items_object(api_client_for, admin_user, project):
    client = api_client_for(admin_user)
    array = json.dumps([{"text": "one"}, {"text": "two"}], indent=2).encode()
    assert post_file(client, project, "a.json", array).json() == {"created": 2, "updated": 0}
    wrapped = json.dumps({"version": 1, "items": [{"text": "three"}]}).encode()
    assert post_file(client, project, "b.json", wrapped).json() == {"created": 1, "updated": 0}
    assert texts(project) == ["one", "two", "three"]


def test_json_array_errors_name_the_item_and_line(api_client_for, admin_user, project):
    content = b'[\n  {"text": "one"},\n  {"text": "two", "split": "x"},\n  {"text": "three",,}\n]'
    response = post_file(api_client_for(admin_user), project, "a.json", content)
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert [(d["row"], d["field"]) for d in details] == [(2, "split"), (3, "json")]
    assert "(line 4)" in details[1]["message"]
    assert Item.objects.count() == 0


def test_json_body_items(api_client_for, admin_user, project):
    response = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/import/",
        {"items": [{"text": "from a script", "external_id": "s1"}]},
        format="json",
    )
    assert response.status_code == 200 and response.json() == {"created": 1, "updated": 0}
    assert texts(project) == ["from a script"]


def test_csv_with_header_columns_as_is(api_client_for, admin_user, project):
    content = (
        b"external_id,text,split,label,stars\n"
        b'a1,"Great, truly great.",eval,positive,5\n'
        b'a2,"Two\nlines",train,negative,1\n'
    )
    response = post_file(api_client_for(admin_user), project, "reviews.csv", content)
    assert response.json() == {"created": 2, "updated": 0}
    a1, a2 = Item.objects.order_by("id")
    assert (a1.external_id, a1.text, a1.split, a1.metadata) == (
        "a1",
        "Great, truly great.",
        "eval",
        {"stars": "5"},
    )
    assert a1.reference == {"labels": ["positive"]}
    assert a2.text == "Two\nlines"


def test_csv_mapping_form_fields_and_row_numbers(api_client_for, admin_user, project):
    client = api_client_for(admin_user)
    content = b"id,review,sentiment\n7,Nice.,positive\n8,Bad.,awful\n"
    response = post_file(
        client,
        project,
        "r.csv",
        content,
        external_id_column="id",
        text_column="review",
        label_column="sentiment",
    )
    assert response.status_code == 400
    # The header is row 1, so the second data row is row 3, as a spreadsheet shows it.
    assert [(d["row"], d["field"]) for d in response.json()["error"]["details"]] == [(3, "label")]
    fixed = content.replace(b"awful", b"negative")
    response = post_file(
        client,
        project,
        "r.csv",
        fixed,
        external_id_column="id",
        text_column="review",
        label_column="sentiment",
    )
    assert response.json() == {"created": 2, "updated": 0}
    assert list(Item.objects.order_by("id").values_list("external_id", "text", "metadata")) == [
        ("7", "Nice.", {}),
        ("8", "Bad.", {}),
    ]


def test_tsv_without_header(api_client_for, admin_user, project):
    content = b"0\tto water, cloudlike on the bush afar,\t0\n1\tshall yet be glad for him\t1\n"
    response = post_file(
        api_client_for(admin_user),
        project,
        "poems.tsv",
        content,
        header="false",
        external_id_column="column_1",
        text_column="column_2",
    )
    assert response.json() == {"created": 2, "updated": 0}
    assert Item.objects.order_by("id").first().metadata == {"column_3": "0"}


def test_txt_one_item_per_line(api_client_for, admin_user, project):
    content = "first line\n\n  second line  \r\nthird — ünïcode\n".encode()
    response = post_file(api_client_for(admin_user), project, "lines.txt", content)
    assert response.json() == {"created": 3, "updated": 0}
    assert texts(project) == ["first line", "second line", "third — ünïcode"]


def test_txt_one_item_per_paragraph(api_client_for, admin_user, project, settings):
    content = b"Para one,\nstill one.\n\n\nPara two.\n\nPara three\nends here"
    response = post_file(api_client_for(admin_user), project, "doc.txt", content, txt_mode="paragraphs")
    assert response.json() == {"created": 3, "updated": 0}
    assert texts(project) == ["Para one,\nstill one.", "Para two.", "Para three\nends here"]
    settings.SYNTHLAB_MAX_TEXT_CHARS = 12
    response = post_file(api_client_for(admin_user), project, "doc.txt", content, txt_mode="paragraphs")
    # Paragraphs are numbered by the line they start on.
    assert [(d["row"], d["field"]) for d in response.json()["error"]["details"]] == [(1, "text"), (7, "text")]


def test_reimport_updates_by_external_id_and_keeps_candidates_unique(api_client_for, admin_user, project):
    client = api_client_for(admin_user)
    rows = [
        {
            "external_id": "x1",
            "text": "Old text.",
            "split": "eval",
            "candidates": [{"text": "Nice.", "model": "m1"}, {"text": "Nice.", "model": "m1"}],
        },
        {"external_id": "x2", "text": "Other."},
    ]
    first = post_file(client, project, "a.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    assert first.json() == {"created": 2, "updated": 0}
    assert Candidate.objects.count() == 1
    rows[0]["text"] = "New text."
    rows[0]["candidates"].append({"text": "Great.", "model": "m2", "label": "positive"})
    del rows[0]["split"]
    rows.append({"external_id": "x3", "text": "Third."})
    second = post_file(client, project, "a.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    assert second.json() == {"created": 1, "updated": 2}
    assert Item.objects.count() == 3
    x1 = Item.objects.get(external_id="x1")
    assert x1.text == "New text." and x1.content_hash == content_hash("New text.")
    assert x1.split == "eval"  # a row that says nothing about the split keeps it
    assert sorted(x1.candidates.values_list("text", "model")) == [("Great.", "m2"), ("Nice.", "m1")]
    third = post_file(client, project, "a.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    assert third.json() == {"created": 0, "updated": 3}
    assert Candidate.objects.count() == 2 and Item.objects.count() == 3


def test_candidates_and_labels_become_review_tasks(api_client_for, admin_user, project):
    rows = [
        {
            "external_id": "c1",
            "text": "A warm, funny film.",
            "candidates": [
                {"text": "positive: warm and funny", "label": "positive", "model": "small"},
                {"text": "negative", "label": "negative", "model": "big"},
            ],
        },
        {"external_id": "c2", "text": "No candidates here.", "labels": ["negative"]},
    ]
    response = post_file(
        api_client_for(admin_user), project, "c.jsonl", "\n".join(json.dumps(r) for r in rows).encode()
    )
    assert response.json() == {"created": 2, "updated": 0}
    c1 = Item.objects.get(external_id="c1")
    assert list(c1.candidates.order_by("id").values_list("label", "model", "source")) == [
        ("positive", "small", "import"),
        ("negative", "big", "import"),
    ]
    modes = sorted(ReviewTask.objects.filter(item=c1).values_list("mode", flat=True))
    # The project reviews in all four modes: two candidates to rate and edit, one pair, one label task.
    assert modes == ["compare", "edit", "edit", "label", "rate", "rate"]
    c2 = Item.objects.get(external_id="c2")
    assert c2.reference == {"labels": ["negative"]}
    assert list(ReviewTask.objects.filter(item=c2).values_list("mode", flat=True)) == ["label"]
    assert set(Item.objects.values_list("status", flat=True)) == {"in_review"}


def test_ner_spans_are_checked_against_the_text(api_client_for, admin_user):
    from annotation.services.projects import project_create

    ner = project_create(
        user=admin_user, data={"name": "NER", "task_type": "ner", "labels": ["person"], "modes": ["label"]}
    )
    client = api_client_for(admin_user)
    good = {"text": "emma is cute", "spans": [{"start": 0, "end": 4, "label": "person"}]}
    bad = {"text": "emma", "spans": [{"start": 0, "end": 9, "label": "person"}]}
    response = post_file(client, ner, "n.jsonl", f"{json.dumps(good)}\n{json.dumps(bad)}".encode())
    assert [(d["row"], d["field"]) for d in response.json()["error"]["details"]] == [(2, "spans")]
    response = post_file(client, ner, "n.jsonl", json.dumps(good).encode())
    assert response.json() == {"created": 1, "updated": 0}
    item = Item.objects.get(project=ner)
    assert item.reference == {"spans": [{"start": 0, "end": 4, "label": "person", "text": "emma"}]}
    assert item.tasks.get().mode == "label"


def test_ten_thousand_rows_via_the_api(api_client_for, admin_user, project):
    lines = (
        json.dumps({"external_id": f"id-{n}", "text": f"Item number {n}.", "label": "positive"})
        for n in range(10_000)
    )
    content = "\n".join(lines).encode()
    client = api_client_for(admin_user)
    assert post_file(client, project, "big.jsonl", content).json() == {"created": 10_000, "updated": 0}
    assert Item.objects.filter(project=project).count() == 10_000
    assert ReviewTask.objects.filter(project=project, mode="label").count() == 10_000
    assert Item.objects.get(external_id="id-9999").text == "Item number 9999."
    assert post_file(client, project, "big.jsonl", content).json() == {"created": 0, "updated": 10_000}
    assert Item.objects.count() == 10_000 and ReviewTask.objects.count() == 10_000


@pytest.mark.parametrize("chunk", [7, 64, 1 << 16])
def test_json_array_is_read_piece_by_piece_across_chunk_boundaries(monkeypatch, chunk):
    import io

    from annotation import importing

    monkeypatch.setattr(importing, "_CHUNK", chunk)
    items = [
        {
            "text": f"naïve café № {n} — 😀",
            "external_id": n * 1000,
            "metadata": {"score": n / 7, "ok": n % 2 == 0},
        }
        for n in range(300)
    ]
    for indent in (None, 2):
        content = b"\xef\xbb\xbf" + json.dumps({"source": "x", "items": items}, indent=indent).encode()
        rows = list(importing.json_rows(io.BytesIO(content)))
        assert rows == [(n + 1, item) for n, item in enumerate(items)]
    broken = json.dumps(items[:3]).encode()[:-1]  # the closing ] is missing
    assert list(importing.json_rows(io.BytesIO(broken)))[-1][1].field == "json"


def test_many_small_batches_write_the_same_as_one(project):
    from annotation.services.imports import items_import

    def rows(version):
        return [
            (
                n,
                {
                    "external_id": f"b{n}",
                    "text": f"text {n} v{version}",
                    "label": "positive",
                    "candidates": [
                        {"text": f"draft {n}", "model": "m"},
                        {"text": f"v{version}", "model": "m"},
                    ],
                },
            )
            for n in range(1, 12)
        ]

    assert items_import(project=project, rows=rows(1), batch_size=2) == {"created": 11, "updated": 0}
    assert items_import(project=project, rows=rows(2), batch_size=3) == {"created": 0, "updated": 11}
    assert Item.objects.count() == 11
    item = Item.objects.get(external_id="b7")
    assert item.text == "text 7 v2"
    assert sorted(item.candidates.values_list("text", flat=True)) == ["draft 7", "v1", "v2"]
    # label task per item; rate and edit per candidate; compare for each pair of the three candidates
    assert item.tasks.filter(mode="label").count() == 1
    assert item.tasks.filter(mode="rate").count() == 3 and item.tasks.filter(mode="compare").count() == 3
