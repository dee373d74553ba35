"""Team workflow through the real review queue (tasks/next and annotation submit over the API):
gold tasks mixed in at the project's rate and scored, pausing and resuming annotators, assignment,
adjudication, and the webhook events a submission sends."""

import json
import uuid

import pytest

from annotation import stats
from annotation.models import (
    Adjudication,
    AnnotatorPause,
    Item,
    ItemAssignment,
    Membership,
    ReviewTask,
    Role,
    TaskStatus,
    WebhookDelivery,
)
from annotation.services import quality, webhooks
from synthlab.errors import ValidationFailed

from .quality_factories import ANNOTATOR, answer, items_with, quality_project, tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(make_user):
    return make_user("carol")


@pytest.fixture
def rita(make_user):
    return make_user("rita")


def next_task(client, project, mode="rate"):
    response = client.get(f"/api/v1/projects/{project.pk}/tasks/next/?mode={mode}")
    assert response.status_code in (200, 204), response.content
    return response.json() if response.status_code == 200 else None


def submit(client, task_id, value):
    response = client.post(
        f"/api/v1/tasks/{task_id}/annotations/",
        {"value": value, "client_id": str(uuid.uuid4()), "duration_ms": 5000},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


# --- Gold --------------------------------------------------------------------------------------
def test_gold_tasks_are_mixed_in_at_the_configured_rate(admin_user, annotator, api_client_for):
    project = quality_project(admin=admin_user, members=[(annotator, ANNOTATOR)], overlap=1)
    items = items_with(project, 45)
    quality.items_gold_set(project=project, items=items[:15], reference={"rating": 4})
    project.options = {"gold_rate": 0.2}
    project.save()
    gold_ids = set(ReviewTask.objects.filter(project=project, is_gold=True).values_list("pk", flat=True))
    client = api_client_for(annotator)
    served = []
    for n in range(1, 31):
        task = next_task(client, project)
        served.append(task["id"] in gold_ids)
        submit(client, task["id"], {"rating": 4})
        # Never more than about one task away from the rate, at every point.
        assert abs(sum(served) - 0.2 * n) <= 1.5, (n, sum(served))
    assert 5 <= sum(served) <= 7  # 20% of 30, give or take the jitter
    # Not a fixed cadence: the gaps between gold tasks differ.
    positions = [i for i, gold in enumerate(served) if gold]
    assert len({b - a for a, b in zip(positions, positions[1:], strict=False)}) > 1


def test_gold_tasks_look_like_any_other_task(admin_user, annotator, api_client_for):
    project = quality_project(admin=admin_user, members=[(annotator, ANNOTATOR)], overlap=1)
    items = items_with(project, 2)
    quality.items_gold_set(project=project, items=[items[0]], reference={"rating": 5})
    client = api_client_for(annotator)
    first, second = next_task(client, project), None
    submit(client, first["id"], {"rating": 3})
    second = next_task(client, project)
    assert {first["id"], second["id"]} == {t.pk for t in tasks(project, "rate")}
    gold, plain = (first, second) if first["item"]["id"] == items[0].pk else (second, first)
    assert set(gold) == set(plain) and set(gold["item"]) == set(plain["item"])
    assert gold["overlap"] == plain["overlap"] or "overlap" not in gold
    text = str(gold).lower()
    assert "gold" not in text and "reference" not in text


def test_gold_accuracy_per_annotator_on_the_dashboard(admin_user, annotator, carol, api_client_for):
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)], overlap=1
    )
    items = items_with(project, 4)
    quality.items_gold_set(project=project, items=items, reference={"rating": 4})
    for user, ratings in ((annotator, [4, 4, 4, 1]), (carol, [2, 2, 4, 4])):
        client = api_client_for(user)
        for rating in ratings:
            submit(client, next_task(client, project)["id"], {"rating": rating})
    body = api_client_for(admin_user).get(f"/api/v1/projects/{project.pk}/stats/").json()
    gold = {row["username"]: row["gold"] for row in body["annotators"]}
    assert gold["bob"] == {"answered": 4, "correct": 3, "accuracy": 0.75}
    assert gold["carol"] == {"answered": 4, "correct": 2, "accuracy": 0.5}
    # Gold tasks take every annotator, so they are counted apart from the project's progress.
    assert body["progress"]["rate"]["gold"] == 4 and body["progress"]["rate"]["done"] == 0


def test_label_gold_from_an_imported_reference(project, admin_user, annotator, api_client_for):
    items = items_with(project, 2, label="positive")
    # What an import leaves: an external id and the reference in the import's shape.
    Item.objects.filter(pk=items[0].pk).update(external_id="row-1", reference={"labels": ["negative"]})
    marked = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/gold/", {"external_ids": ["row-1"]}, format="json"
    )
    assert marked.json() == {"items": 1}
    unknown = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/gold/", {"external_ids": ["row-9"]}, format="json"
    )
    assert unknown.status_code == 400 and "row-9" in unknown.json()["error"]["message"]
    gold_task = ReviewTask.objects.get(item=items[0], mode="label")
    assert gold_task.is_gold and gold_task.overlap == quality.gold_overlap(project)
    client = api_client_for(annotator)
    task = next_task(client, project, mode="label")
    while task["id"] != gold_task.pk:
        submit(client, task["id"], {"labels": ["positive"]})
        task = next_task(client, project, mode="label")
    submit(client, task["id"], {"labels": ["negative"]})
    [result] = quality.gold_results(project=project)
    assert result["correct"] is True
    with pytest.raises(ValidationFailed, match="Unknown label"):
        quality.items_gold_set(project=project, items=[items[1]], reference="neutral")
    assert (
        api_client_for(annotator)
        .post(
            f"/api/v1/projects/{project.pk}/gold/",
            {"items": [items[1].pk], "reference": "negative"},
            format="json",
        )
        .status_code
        == 403
    )


def test_an_annotator_below_the_gold_threshold_is_paused_and_told_why(
    admin_user, annotator, carol, api_client_for, settings
):
    settings.SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE = True
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)], overlap=1
    )
    items = items_with(project, 8)
    quality.items_gold_set(project=project, items=items[:5], reference={"rating": 5})
    project.options = {"gold_pause_below": 0.6, "gold_min_answers": 3}
    project.save()
    hook = webhooks.webhook_create(
        project=project, url="http://127.0.0.1:9/paused", events=["annotator.paused"], secret="s" * 20
    )
    client = api_client_for(annotator)
    # Gold tasks are not mixed by rate here (no gold_rate), so the queue serves them first by id.
    for _ in range(3):
        task = next_task(client, project)
        assert ReviewTask.objects.get(pk=task["id"]).is_gold
        submit(client, task["id"], {"rating": 1})
    membership = Membership.objects.get(project=project, user=annotator)
    assert membership.paused
    assert "0 of 3" in membership.paused_reason and "60%" in membership.paused_reason
    refused = client.get(f"/api/v1/projects/{project.pk}/tasks/next/?mode=rate")
    assert refused.status_code == 403
    assert "0 of 3" in refused.json()["error"]["message"]
    # The annotator sees why on the queue page, too.
    browser = api_client_for()
    browser.force_login(annotator)
    assert "0 of 3" in browser.get(f"/projects/{project.pk}/queue/?mode=rate").content.decode()
    # The admin is told: the dashboard lists the pause, and the annotator.paused webhook fires.
    browser.force_login(admin_user)
    dashboard = browser.get(f"/projects/{project.pk}/dashboard/").content.decode()
    assert 'id="paused-annotators"' in dashboard and "0 of 3" in dashboard
    notice = browser.get(f"/projects/{project.pk}/").content.decode()
    assert 'id="paused-notice"' in notice and "Paused from the queue: bob." in notice
    [delivery] = hook.deliveries.all()
    assert delivery.payload["annotator"] == "bob" and delivery.payload["gold_answered"] == 3
    # Others carry on.
    assert next_task(api_client_for(carol), project) is not None

    # Resume: back in the queue; accuracy for the next decision counts only answers from now on.
    resumed = api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/members/bob/pause/", {"paused": False}, format="json"
    )
    assert resumed.json() == {"username": "bob", "paused": False, "paused_reason": ""}
    assert AnnotatorPause.objects.get().resumed_by == admin_user
    task = next_task(client, project)
    submit(client, task["id"], {"rating": 1})
    assert not Membership.objects.get(project=project, user=annotator).paused
    assert [r["username"] for r in stats.project_stats(project=project)["annotators"] if r["paused"]] == []


# --- Assignment --------------------------------------------------------------------------------
def test_an_annotator_never_receives_a_task_assigned_to_someone_else(
    admin_user, annotator, carol, api_client_for
):
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)], overlap=2
    )
    items = items_with(project, 6)
    Item.objects.filter(pk__in=[items[4].pk, items[5].pk]).update(text="urgent medical text")
    admin = api_client_for(admin_user)
    by_selection = admin.post(
        f"/api/v1/projects/{project.pk}/assignments/",
        {"annotators": ["carol"], "items": [items[0].pk, items[1].pk]},
        format="json",
    )
    assert by_selection.json() == {"assigned": 2}
    by_filter = admin.post(
        f"/api/v1/projects/{project.pk}/assignments/",
        {"annotators": ["bob"], "filter": {"search": "urgent medical"}},
        format="json",
    )
    assert by_filter.json() == {"assigned": 2}
    unknown = admin.post(
        f"/api/v1/projects/{project.pk}/assignments/",
        {"annotators": ["mallory"], "items": [items[2].pk]},
        format="json",
    )
    assert unknown.status_code == 400 and "not a member" in unknown.json()["error"]["message"]
    assert ItemAssignment.objects.count() == 4

    def drain(user):
        client, seen = api_client_for(user), []
        while (task := next_task(client, project)) is not None:
            seen.append(task["item"]["id"])
            submit(client, task["id"], {"rating": 3})
        return set(seen)

    assert drain(annotator) == {items[2].pk, items[3].pk, items[4].pk, items[5].pk}
    assert drain(carol) == {items[0].pk, items[1].pk, items[2].pk, items[3].pk}
    # Unassigning sends items back to everyone.
    admin.delete(f"/api/v1/projects/{project.pk}/assignments/", {"items": [items[0].pk]}, format="json")
    assert drain(annotator) == {items[0].pk}


# --- Adjudication ------------------------------------------------------------------------------
def test_adjudication_queue_holds_disagreements_samples_and_sent_back_tasks(
    admin_user, annotator, carol, rita, api_client_for
):
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR), (rita, Role.REVIEWER)]
    )
    items_with(project, 4)
    agree, disagree, open_task, agree2 = tasks(project, "rate")
    for task, (b, c) in ((agree, (4, 4)), (disagree, (1, 5)), (agree2, (3, 3))):
        answer(task, annotator, {"rating": b, "comment": ""})
        answer(task, carol, {"rating": c, "comment": ""})
    answer(open_task, annotator, {"rating": 2, "comment": ""})
    reviewer = api_client_for(rita)
    queue = reviewer.get(f"/api/v1/projects/{project.pk}/adjudication/").json()
    assert [(row["id"], row["reason"]) for row in queue["results"]] == [(disagree.pk, "annotators disagree")]
    assert api_client_for(annotator).get(f"/api/v1/projects/{project.pk}/adjudication/").status_code == 403

    # A spot-check sample of agreed tasks, when asked for (all of them at rate 1).
    project.options = {"adjudication_sample_rate": 1.0}
    project.save()
    reasons = {row["id"]: row["reason"] for row in stats.adjudication_queue(project=project)}
    assert reasons == {agree.pk: "spot check", disagree.pk: "annotators disagree", agree2.pk: "spot check"}
    project.options = {}
    project.save()

    # The reviewer sees both answers with who gave them, and sends the task back for one more.
    detail = reviewer.get(f"/api/v1/tasks/{disagree.pk}/review/").json()
    assert {(a["annotator"], a["value"]["rating"]) for a in detail["annotations"]} == {
        ("bob", 1),
        ("carol", 5),
    }
    sent = reviewer.post(
        f"/api/v1/tasks/{disagree.pk}/review/", {"decision": "sent_back", "extra": 1}, format="json"
    )
    assert sent.status_code == 200 and sent.json()["adjudication"]["decision"] == "sent_back"
    disagree.refresh_from_db()
    assert (disagree.status, disagree.overlap) == (TaskStatus.OPEN, 3)
    assert stats.adjudication_queue(project=project) == []
    # A third annotator answers through the queue; the task comes back to the reviewer.
    dave = Membership.objects.create(
        project=project,
        user=type(admin_user).objects.create_user("dave", password="pw-secret-123"),
        role=ANNOTATOR,
    ).user
    dave_client = api_client_for(dave)
    task = next_task(dave_client, project)
    while task["id"] != disagree.pk:
        submit(dave_client, task["id"], {"rating": 3})
        task = next_task(dave_client, project)
    submit(dave_client, disagree.pk, {"rating": 5})
    assert [(r["id"], r["reason"]) for r in stats.adjudication_queue(project=project)] == [
        (disagree.pk, "sent back; new annotations are in")
    ]

    # A final answer settles it; a bad one is refused and changes nothing.
    bad = reviewer.post(
        f"/api/v1/tasks/{disagree.pk}/review/", {"decision": "final", "value": {"rating": 9}}, format="json"
    )
    assert bad.status_code == 400 and "1 to 5" in bad.json()["error"]["message"]
    final = reviewer.post(
        f"/api/v1/tasks/{disagree.pk}/review/",
        {"decision": "final", "value": {"rating": 5, "comment": "clearly fine"}},
        format="json",
    )
    assert final.json()["adjudication"]["value"] == {"rating": 5, "comment": "clearly fine"}
    assert stats.adjudication_queue(project=project) == []
    assert quality.adjudicated_answers(task_ids=[disagree.pk]) == {
        disagree.pk: {
            "value": {"rating": 5, "comment": "clearly fine"},
            "adjudicator": "rita",
            "adjudicated_at": Adjudication.objects.get().updated_at.isoformat(),
            "note": "",
        }
    }


def test_adjudication_page_makes_an_annotators_answer_final(admin_user, annotator, carol, rita, client):
    project = quality_project(
        admin=admin_user,
        members=[(annotator, ANNOTATOR), (carol, ANNOTATOR), (rita, Role.REVIEWER)],
        modes=["compare"],
    )
    items_with(project, 1, models=("gpt", "smol"))
    [task] = tasks(project, "compare")
    answer(task, annotator, {"choice": "a", "reason": "A is right"})
    answer(task, carol, {"choice": "b", "reason": "B reads better"})
    client.force_login(rita)
    url = f"/projects/{project.pk}/adjudication/{task.pk}/"
    page = client.get(url).content.decode()
    assert "A is right" in page and "B reads better" in page
    response = client.post(
        url, {"decision": "final", "use_value": '{"choice": "b", "reason": "B reads better"}'}
    )
    assert response.status_code == 302
    assert Adjudication.objects.get(task=task).value == {"choice": "b", "reason": "B reads better"}
    assert "Nothing to settle" in client.get(f"/projects/{project.pk}/adjudication/").content.decode()


# --- Webhook events from the queue -------------------------------------------------------------
def test_submitting_emits_annotation_created_and_task_completed(
    admin_user, annotator, api_client_for, settings, django_capture_on_commit_callbacks
):
    settings.SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE = True
    project = quality_project(admin=admin_user, members=[(annotator, ANNOTATOR)], overlap=1)
    items_with(project, 1)
    hook = webhooks.webhook_create(
        project=project,
        url="http://127.0.0.1:9/events",
        events=["annotation.created", "task.completed"],
        secret="s" * 20,
    )
    client = api_client_for(annotator)
    task = next_task(client, project)
    with django_capture_on_commit_callbacks(execute=True):
        submit(client, task["id"], {"rating": 4, "comment": "ok"})
    deliveries = {d.event: d for d in WebhookDelivery.objects.filter(webhook=hook)}
    assert set(deliveries) == {"annotation.created", "task.completed"}
    assert deliveries["annotation.created"].payload["value"] == {"rating": 4, "comment": "ok"}
    assert deliveries["annotation.created"].payload["annotator"] == "bob"
    assert deliveries["task.completed"].payload["task"] == task["id"]
    # Queued to the broker after commit (a failure to queue would be written on the delivery).
    assert all(d.error == "" for d in deliveries.values())


def test_picking_an_annotators_edit_keeps_the_human_candidate_it_became(
    admin_user, annotator, carol, rita, api_client_for
):
    project = quality_project(
        admin=admin_user,
        members=[(annotator, ANNOTATOR), (carol, ANNOTATOR), (rita, Role.REVIEWER)],
        modes=["edit"],
    )
    items_with(project, 1, texts={"m0": "Paris is the capitol."})
    for user, text in ((annotator, "Paris is the capital."), (carol, "The capital is Paris.")):
        client = api_client_for(user)
        submit(client, next_task(client, project, mode="edit")["id"], {"text": text})
    [task] = tasks(project, "edit")
    detail = api_client_for(rita).get(f"/api/v1/tasks/{task.pk}/review/").json()
    carols = next(a for a in detail["annotations"] if a["annotator"] == "carol")
    assert carols["value"]["candidate"]  # the human candidate her edit became
    final = api_client_for(rita).post(
        f"/api/v1/tasks/{task.pk}/review/", {"decision": "final", "value": carols["value"]}, format="json"
    )
    assert final.status_code == 200, final.content
    assert Adjudication.objects.get(task=task).value == {
        "text": "The capital is Paris.",
        "candidate": carols["value"]["candidate"],
    }


def test_exports_use_the_adjudicated_answer_and_say_so(
    project, admin_user, annotator, carol, rita, api_client_for
):
    from annotation.services.exports import export_create
    from annotation.tasks import export_run_task

    from .export_helpers import export_path, read_jsonl

    Membership.objects.create(project=project, user=carol, role=ANNOTATOR)
    Membership.objects.create(project=project, user=rita, role=Role.REVIEWER)
    project.modes, project.overlap = ["label"], 2
    project.save()
    items_with(project, 1, text="The plot drags but the ending lands.", label="positive")
    for user, label in ((annotator, "positive"), (carol, "negative")):
        client = api_client_for(user)
        submit(client, next_task(client, project, mode="label")["id"], {"labels": [label]})

    def labels_export():
        export = export_create(project=project, user=admin_user, format="labels", file_type="jsonl")
        export_run_task(export.pk)
        export.refresh_from_db()
        return export, read_jsonl(export_path(export))

    export, rows = labels_export()
    assert rows == [] and export.counts["dropped"]["no_label_majority"] == 1  # a 1-1 tie
    [queued] = api_client_for(rita).get(f"/api/v1/projects/{project.pk}/adjudication/").json()["results"]
    api_client_for(rita).post(
        f"/api/v1/tasks/{queued['id']}/review/",
        {"decision": "final", "value": {"labels": ["negative"]}},
        format="json",
    )
    _, [row] = labels_export()
    assert row["label"] == "negative"
    # The row's provenance says the answer is a reviewer's ruling, not the annotators' majority.
    assert json.loads(row["meta"]) == {"adjudicated": True, "share": 0.5, "task_id": queued["id"]}
    assert row["annotator_count"] == 2


def test_a_new_candidate_on_a_gold_item_gets_a_gold_task_for_every_annotator(admin_user, annotator):
    from annotation.services.candidates import candidates_create

    project = quality_project(admin=admin_user, members=[(annotator, ANNOTATOR)], overlap=1)
    [item] = items_with(project, 1)
    quality.items_gold_set(project=project, items=[item], reference={"rating": 4})
    candidates_create(project=project, rows=[{"item": item.pk, "text": "A later draft.", "model": "m1"}])
    later = ReviewTask.objects.get(candidate_a__text="A later draft.")
    assert later.is_gold and later.overlap == quality.gold_overlap(project) == 50
    # Unmarking puts the project's overlap back.
    quality.items_gold_set(project=project, items=[item], is_gold=False)
    later.refresh_from_db()
    assert (later.is_gold, later.overlap) == (False, 1)
