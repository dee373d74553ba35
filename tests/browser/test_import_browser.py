"""An admin imports a CSV in real Chromium: the preview shows the first rows as text, choosing which
column holds the text updates the preview in place (htmx), and Import stores the items."""

import pytest

from annotation.models import Item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CSV = b'id,review,sentiment\n1,"<img src=x onerror=alert(1)> Loved it",positive\n2,Fell asleep.,negative\n'


def test_admin_uploads_maps_columns_and_imports(login, project, tmp_path):
    page = login("alice")
    page.goto(f"/projects/{project.pk}/import/")
    path = tmp_path / "reviews.csv"
    path.write_bytes(CSV)
    page.set_input_files("input[name=file]", str(path))
    page.get_by_role("button", name="Upload and preview").click()

    raw = page.locator("table").nth(0)
    assert "<img src=x onerror=alert(1)> Loved it" in raw.inner_text()
    mapped = page.locator("#mapped")
    assert "This row has no text" in mapped.inner_text()  # no column is called "text" yet

    page.select_option("select[name=text_column]", "review")
    page.wait_for_function("() => !document.getElementById('mapped').innerText.includes('no text')")
    page.select_option("select[name=external_id_column]", "id")
    page.select_option("select[name=label_column]", "sentiment")
    page.wait_for_function("() => document.getElementById('mapped').innerText.includes('negative')")
    assert page.locator("#mapped .pill", has_text="ok").count() == 2

    page.get_by_role("button", name="Import").click()
    page.wait_for_url(f"**/projects/{project.pk}/")
    assert "2 new item(s)" in page.locator(".messages").inner_text()
    assert page.errors == [] and page.dialogs == []
    assert list(Item.objects.order_by("id").values_list("external_id", "reference")) == [
        ("1", {"labels": ["positive"]}),
        ("2", {"labels": ["negative"]}),
    ]
