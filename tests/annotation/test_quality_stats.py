"""The stats API and the dashboard: agreement per mode on real annotations, per-annotator numbers,
model rankings, charts as SVG with their numbers as tables and CSV, the low-agreement list, and
who may see them."""

import csv
import io
import math

import pytest

from annotation import metrics
from annotation.models import ReviewMode

from .quality_factories import ANNOTATOR, REVIEWER, answer, days_ago, items_with, quality_project, tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@pytest.fixture
def rated(admin_user, annotator, carol):
    """Four rate tasks answered by bob and carol: (1,1), (1,2), (2,3), (3,3)."""
    project = quality_project(admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)])
    items_with(project, 4)
    for task, (b, c) in zip(tasks(project, "rate"), [(1, 1), (1, 2), (2, 3), (3, 3)], strict=True):
        answer(task, annotator, {"rating": b, "comment": ""}, duration_ms=30_000)
        answer(task, carol, {"rating": c, "comment": ""}, duration_ms=60_000)
    return project


def test_stats_api_reports_alpha_progress_and_annotators(rated, admin_user, api_client_for):
    body = api_client_for(admin_user).get(f"/api/v1/projects/{rated.pk}/stats/").json()
    # The hand-computed example of test_metrics: alpha = 17/24 on four tasks.
    assert body["agreement"]["rate"]["krippendorff_alpha"] == pytest.approx(17 / 24)
    assert body["agreement"]["rate"]["tasks"] == 4
    assert body["progress"]["rate"] == {"open": 0, "leased": 0, "done": 4, "gold": 0}
    people = {row["username"]: row for row in body["annotators"]}
    assert people["bob"]["annotations"] == 4 and people["carol"]["annotations"] == 4
    # Two annotators: the majority of the others is the other one; they agree on 2 of 4 tasks.
    assert people["bob"]["majority_agreement"] == pytest.approx(0.5)
    # 4 tasks in 2 minutes of work = 120 tasks/hour; median 30 s.
    assert people["bob"]["tasks_per_hour"] == pytest.approx(120.0)
    assert people["bob"]["median_seconds"] == pytest.approx(30.0)
    assert people["carol"]["tasks_per_hour"] == pytest.approx(60.0)
    assert body["ratings_by_source"][0]["source"] == "m0"
    assert [body["ratings_by_source"][0][str(n)] for n in range(1, 6)] == [3, 2, 3, 0, 0]


def test_stats_are_for_reviewers_and_admins(
    rated, admin_user, annotator, outsider, make_user, api_client_for
):
    from annotation.models import Membership

    reviewer = make_user("rita")
    Membership.objects.create(project=rated, user=reviewer, role=REVIEWER)
    url = f"/api/v1/projects/{rated.pk}/stats/"
    assert api_client_for(reviewer).get(url).status_code == 200
    assert api_client_for(annotator).get(url).status_code == 403
    assert api_client_for(outsider).get(url).status_code == 404
    client = api_client_for()
    client.force_login(annotator)
    assert client.get(f"/projects/{rated.pk}/dashboard/").status_code == 403
    client.force_login(outsider)
    assert client.get(f"/projects/{rated.pk}/dashboard/").status_code == 404


def test_compare_win_rates_and_bradley_terry_per_model(admin_user, annotator, carol, api_client_for):
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)], modes=["compare"]
    )
    items_with(project, 4, models=("gpt", "smol"))
    units = []
    for n, task in enumerate(tasks(project, "compare")):
        gpt_side = "a" if task.candidate_a.model == "gpt" else "b"
        bob_choice, carol_choice = gpt_side, gpt_side if n < 3 else "tie"
        answer(task, annotator, {"choice": bob_choice, "reason": ""})
        answer(task, carol, {"choice": carol_choice, "reason": ""})
        units.append([bob_choice, carol_choice])
    body = api_client_for(admin_user).get(f"/api/v1/projects/{project.pk}/stats/").json()
    models = {row["model"]: row for row in body["models"]}
    assert (models["gpt"]["wins"], models["gpt"]["ties"], models["gpt"]["comparisons"]) == (7, 1, 8)
    assert models["gpt"]["win_rate"] == pytest.approx(7.5 / 8)
    # Baseline gpt (most comparisons, first by name) at 1000; smol won 0.5 of 8: log-odds 0.5/7.5.
    assert models["gpt"]["bt_score"] == pytest.approx(1000.0)
    assert models["smol"]["bt_score"] == pytest.approx(1000 + 400 * math.log10(0.5 / 7.5), abs=0.05)
    assert models["smol"]["ci_low"] <= models["smol"]["bt_score"] <= models["smol"]["ci_high"]
    assert body["agreement"]["compare"]["fleiss_kappa"] == pytest.approx(metrics.fleiss_kappa(units))
    assert body["agreement"]["compare"]["tasks"] == 4
    [pair] = body["agreement"]["compare"]["cohen_kappa"]
    assert pair["annotators"] == ["bob", "carol"] and pair["tasks"] == 4


def test_label_agreement_distribution_and_low_agreement_list(
    project, admin_user, annotator, carol, api_client_for
):
    from annotation.models import Membership

    Membership.objects.create(project=project, user=carol, role=ANNOTATOR)
    project.modes, project.overlap = ["label"], 2
    project.save()
    items_with(project, 4, label="positive")
    label_tasks = tasks(project, "label")
    for task in label_tasks:
        task.overlap = 2
        task.save()
    pairs = [
        ("positive", "positive"),
        ("negative", "negative"),
        ("positive", "negative"),
        ("negative", "negative"),
    ]
    for task, (b, c) in zip(label_tasks, pairs, strict=True):
        answer(task, annotator, {"labels": [b]})
        answer(task, carol, {"labels": [c]})
    client = api_client_for(admin_user)
    body = client.get(f"/api/v1/projects/{project.pk}/stats/").json()
    # P_i = 1,1,0,1 -> P_bar = 3/4; p_pos = 3/8, p_neg = 5/8 -> P_e = 34/64; kappa = (3/4 - 34/64)/(30/64).
    expected = (0.75 - 34 / 64) / (1 - 34 / 64)
    assert body["agreement"]["label"]["fleiss_kappa"] == pytest.approx(expected)
    assert {row["label"]: row["count"] for row in body["labels"]} == {"positive": 3, "negative": 5}
    low = client.get(f"/api/v1/projects/{project.pk}/agreement/tasks/?mode=label&below=0.9").json()
    assert [row["task"] for row in low["results"]] == [label_tasks[2].pk]
    assert low["results"][0]["agreement"] == 0.0
    assert (
        client.get(f"/api/v1/projects/{project.pk}/agreement/tasks/?mode=rate&below=0.9").json()["count"] == 0
    )
    bad = client.get(f"/api/v1/projects/{project.pk}/agreement/tasks/?below=3")
    assert bad.status_code == 400 and "0 to 1" in bad.json()["error"]["message"]
    # The same list in the browser, filtered.
    browser = api_client_for()
    browser.force_login(admin_user)
    page = browser.get(f"/projects/{project.pk}/agreement/?mode=label&below=0.9").content.decode()
    assert "1 task(s) below 0.9" in page
    assert f"/adjudication/{label_tasks[2].pk}/" in page


def test_ner_span_f1(admin_user, annotator, carol, api_client_for):
    project = quality_project(
        admin=admin_user,
        members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)],
        task_type="ner",
        labels=["PER", "LOC"],
        modes=["label"],
    )
    items_with(project, 2, text="Ada Lovelace lived in London.", label=[])
    first, second = tasks(project, "label")
    ada, london = {"start": 0, "end": 12, "label": "PER"}, {"start": 22, "end": 28, "label": "LOC"}
    answer(first, annotator, {"spans": [ada, london]})
    answer(first, carol, {"spans": [ada]})
    answer(second, annotator, {"spans": [ada]})
    answer(second, carol, {"spans": [ada]})
    body = api_client_for(admin_user).get(f"/api/v1/projects/{project.pk}/stats/").json()
    # Task 1: 2*1/(2+1) = 2/3; task 2: 1.
    assert body["agreement"]["label"] == {"span_f1": pytest.approx((2 / 3 + 1) / 2), "tasks": 2}
    assert {row["label"]: row["count"] for row in body["labels"]} == {"PER": 4, "LOC": 1}


def test_dashboard_shows_charts_with_tables_and_csv(rated, admin_user, api_client_for):
    client = api_client_for()
    client.force_login(admin_user)
    page = client.get(f"/projects/{rated.pk}/dashboard/").content.decode()
    assert page.count("<svg") == 7
    for key in ("progress", "throughput", "ratings", "models", "labels", "agreement", "progress-by-mode"):
        assert f'id="chart-{key}"' in page
        assert f"/dashboard/{key}.csv" in page
    assert "Krippendorff" in page and "0.708" in page
    # The ratings chart: m0 got 3 ones, 2 twos and 3 threes.
    assert 'data-rating="1" data-value="3"' in page and 'data-rating="2" data-value="2"' in page
    response = client.get(f"/projects/{rated.pk}/dashboard/ratings.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["source", "1", "2", "3", "4", "5", "total", "mean"]
    assert rows[1] == ["m0", "3", "2", "3", "0", "0", "8", "2"]
    throughput = list(
        csv.reader(io.StringIO(client.get(f"/projects/{rated.pk}/dashboard/throughput.csv").content.decode()))
    )
    assert ["bob", "4", "120", "30"] in throughput
    assert client.get(f"/projects/{rated.pk}/dashboard/nope.csv").status_code == 404
    # The htmx refresh renders only the body.
    partial = client.get(
        f"/projects/{rated.pk}/dashboard/?partial=body", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert partial.lstrip().startswith('<div id="dashboard-body"') and "<html" not in partial


def test_progress_over_time_counts_done_per_day_and_remaining(admin_user, annotator, carol):
    from annotation import stats
    from annotation.models import ReviewTask

    project = quality_project(admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)])
    items_with(project, 3)
    ReviewTask.objects.filter(project=project).update(created_at=days_ago(3))
    first, second, _third = tasks(project, "rate")
    answer(first, annotator, {"rating": 4}, at=days_ago(2))
    answer(first, carol, {"rating": 4}, at=days_ago(2))
    answer(second, annotator, {"rating": 2}, at=days_ago(1))
    answer(second, carol, {"rating": 5}, at=days_ago(1))
    rows = stats.progress_over_time(project)
    by_day = {row["date"]: row for row in rows}
    assert [r["remaining"] for r in rows] == [3, 2, 1, 1]
    assert by_day[days_ago(2).date().isoformat()]["done"] == 1
    assert by_day[days_ago(1).date().isoformat()]["annotations"] == 2
    # Agreement per day: (4, 4) alone has no variation (alpha undefined); (2, 5) alone is alpha 0.
    over_time = stats.agreement_over_time(stats._load(project))
    assert [(r["mode"], r["value"], r["tasks"]) for r in over_time] == [("rate", None, 1), ("rate", 0.0, 1)]


def test_chart_text_from_data_is_escaped(admin_user, annotator, carol, api_client_for):
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)], modes=["rate", "compare"]
    )
    evil = '<img src=x onerror="alert(1)">'
    items_with(project, 1, models=(evil, "fine"))
    for task in tasks(project, "rate") + tasks(project, "compare"):
        value = {"rating": 3} if task.mode == ReviewMode.RATE else {"choice": "a"}
        answer(task, annotator, value)
    client = api_client_for()
    client.force_login(admin_user)
    page = client.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert evil not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
