"""The export pages: the form with its live row count, the status page, download, and who sees what."""

import pytest
from django.test import Client

from annotation.models import Export, Membership, Role
from annotation.tasks import export_run_task
from annotation.views.exports import live_websocket

from .export_helpers import instruction_project

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def project(admin_user, annotator, make_user):
    project, _ = instruction_project(admin_user, make_user)
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    return project


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(**extra):
    return {
        "format": "dpo",
        "file_type": "jsonl",
        "archive": "zip",
        "completed_only": "on",
        "rules": ["compare", "rating", "edit"],
        "rating_pairs": "best_worst",
        "min_rating_gap": "1",
        "min_vote_margin": "1",
        "rating_agreement": "spread",
        **extra,
    }


def test_admin_sees_the_form_and_the_row_count_before_running(project, admin_user):
    client = client_for(admin_user)
    page = client.get(f"/projects/{project.pk}/exports/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="format"' in html and "Run export" in html and "No exports yet." in html
    assert f'hx-post="/projects/{project.pk}/exports/preview/"' in html

    preview = client.post(f"/projects/{project.pk}/exports/preview/", form_data(), **HTMX).content.decode()
    assert '<strong class="preview-rows">3</strong> rows' in preview
    assert "compare_majority: 1" in preview and "1 row removed: the prompt is in the eval split" in preview

    narrower = client.post(
        f"/projects/{project.pk}/exports/preview/", form_data(min_agreement="0.95"), **HTMX
    )
    assert '<strong class="preview-rows">1</strong>' in narrower.content.decode()
    bad = client.post(
        f"/projects/{project.pk}/exports/preview/", form_data(min_rating="9"), **HTMX
    ).content.decode()
    assert 'class="error"' in bad and "min_rating" in bad
    assert not Export.objects.exists()


def test_running_an_export_from_the_page_then_watching_and_downloading_it(project, admin_user):
    client = client_for(admin_user)
    response = client.post(f"/projects/{project.pk}/exports/", form_data(format="kto", file_type="parquet"))
    export = Export.objects.get()
    assert (
        response.status_code == 302 and response["Location"] == f"/projects/{project.pk}/exports/{export.pk}/"
    )
    assert (export.format, export.file_type, export.filters["completed_only"]) == ("kto", "parquet", True)

    detail = client.get(response["Location"]).content.decode()
    assert "Queued" in detail and "Waiting for a worker" in detail
    if live_websocket():
        assert f'ws-connect="/ws/exports/{export.pk}/progress/"' in detail
    else:
        assert 'hx-trigger="every 2s"' in detail

    export_run_task(export.pk)
    status = client.get(f"{response['Location']}?partial=status", **HTMX).content.decode()
    assert status.lstrip().startswith('<div id="export-status"')
    assert "Succeeded" in status and '<span class="export-rows">7</span> rows' in status
    assert "every 2s" not in status  # finished: no more polling
    assert "rating_desirable" in status and "Eval prompts removed: 1 row." in status
    download = client.get(f"/projects/{project.pk}/exports/{export.pk}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/vnd.apache.parquet"
    assert b"".join(download.streaming_content)[:4] == b"PAR1"

    listing = client.get(f"/projects/{project.pk}/exports/").content.decode()
    assert f"/projects/{project.pk}/exports/{export.pk}/download/" in listing


def test_form_errors_are_shown_next_to_the_fields_and_nothing_is_stored(project, admin_user):
    response = client_for(admin_user).post(f"/projects/{project.pk}/exports/", form_data(format="conll"))
    assert response.status_code == 200
    assert "needs a ner project" in response.content.decode()
    assert not Export.objects.exists()


def test_annotators_see_exports_without_the_form_and_cannot_create(project, admin_user, annotator):
    export = Export.objects.create(project=project, format="sft", created_by=admin_user)
    export_run_task(export.pk)
    client = client_for(annotator)
    page = client.get(f"/projects/{project.pk}/exports/").content.decode()
    assert "Run export" not in page and f"/exports/{export.pk}/download/" in page
    assert client.post(f"/projects/{project.pk}/exports/", form_data()).status_code == 403
    assert client.post(f"/projects/{project.pk}/exports/preview/", form_data(), **HTMX).status_code == 403
    assert client.get(f"/projects/{project.pk}/exports/{export.pk}/download/").status_code == 200
    assert not Export.objects.exclude(pk=export.pk).exists()


def test_outsiders_get_404(project, admin_user, outsider):
    export = Export.objects.create(project=project, format="sft", created_by=admin_user)
    export_run_task(export.pk)
    client = client_for(outsider)
    for url in (
        f"/projects/{project.pk}/exports/",
        f"/projects/{project.pk}/exports/{export.pk}/",
        f"/projects/{project.pk}/exports/{export.pk}/download/",
    ):
        assert client.get(url).status_code == 404, url


def test_the_project_page_links_to_exports(project, annotator):
    html = client_for(annotator).get(f"/projects/{project.pk}/").content.decode()
    assert f'href="/projects/{project.pk}/exports/"' in html


def test_an_unfinished_export_cannot_be_downloaded_yet(project, admin_user):
    export = Export.objects.create(project=project, format="sft", created_by=admin_user)
    response = client_for(admin_user).get(
        f"/projects/{project.pk}/exports/{export.pk}/download/", follow=True
    )
    assert "download it once it has succeeded" in response.content.decode()


@pytest.fixture
def rationale_project(admin_user, make_user):
    """One item whose model rationale agrees with the reviewer's label (see test_export_recipes)."""
    from .export_helpers import Builder
    from .test_export_recipes import recipe_cand, sentiment

    project = sentiment(admin_user)
    b = Builder(project, make_user, annotators=1)
    item = b.item("I loved every minute.", external_id="g1")
    cand = recipe_cand(
        item, "Loving every minute is praise.", label="positive", recipe="rationale", scores={}
    )
    b.label(item, [{"labels": ["positive"]}], suggestion=cand)
    return project


def test_the_rationales_option_runs_from_the_page_for_labels_exports(rationale_project, admin_user):
    from .export_helpers import export_path, read_jsonl

    project, client = rationale_project, client_for(admin_user)
    html = client.get(f"/projects/{project.pk}/exports/").content.decode()
    assert 'name="rationales"' in html and "add a rationale column" in html
    ticked = form_data(format="labels", rationales="on")
    preview = client.post(f"/projects/{project.pk}/exports/preview/", ticked, **HTMX).content.decode()
    assert '<strong class="preview-rows">1</strong> rows' in preview and 'class="error"' not in preview

    response = client.post(f"/projects/{project.pk}/exports/", ticked)
    export = Export.objects.get()
    assert response.status_code == 302 and export.options["rationales"] is True
    export_run_task(export.pk)
    export.refresh_from_db()
    (row,) = read_jsonl(export_path(export))
    assert (row["label"], row["rationale"]) == ("positive", "Loving every minute is praise.")

    client.post(f"/projects/{project.pk}/exports/", form_data(format="labels"))
    unticked = Export.objects.exclude(pk=export.pk).get()
    assert "rationales" not in unticked.options
    export_run_task(unticked.pk)
    unticked.refresh_from_db()
    (row,) = read_jsonl(export_path(unticked))
    assert "rationale" not in row


def test_the_rationales_option_is_only_offered_where_it_applies(project, admin_user):
    # Not a classification project: no checkbox, and a stray value posted anyway is ignored.
    client = client_for(admin_user)
    assert 'name="rationales"' not in client.get(f"/projects/{project.pk}/exports/").content.decode()
    client.post(f"/projects/{project.pk}/exports/", form_data(format="sft", rationales="on"))
    assert "rationales" not in Export.objects.get().options


def test_the_export_page_offers_every_filter_and_option_the_api_takes():
    # A key added to the API's lists without a field on the page would otherwise be left out
    # silently (as the rationales option once was).
    from annotation.exports.forms import NOT_ON_PAGE, ExportForm
    from annotation.exports.spec import FILTER_KEYS, OPTION_KEYS

    on_page = {name for _, names in ExportForm.FIELDSETS for name in names}
    assert on_page == set(ExportForm.base_fields)
    assert set(FILTER_KEYS) | set(OPTION_KEYS) <= on_page | set(NOT_ON_PAGE)
