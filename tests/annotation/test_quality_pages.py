"""The admin pages for quality settings, gold items, assignment and webhooks: forms that save what
they say, refuse bad input with a message and change nothing, and are for admins only."""

import pytest

from annotation.models import Item, ItemAssignment, ReviewTask, Webhook, WebhookDelivery
from annotation.services import webhooks

from .quality_factories import items_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_quality_settings_save_and_bad_values_change_nothing(project, admin_client):
    url = f"/projects/{project.pk}/quality/"
    assert admin_client.get(url).status_code == 200
    saved = admin_client.post(
        url,
        {"action": "options", "gold_rate": "0.1", "gold_pause_below": "0.7", "gold_min_answers": "4"},
        follow=True,
    )
    assert "Quality settings saved." in messages_of(saved)
    project.refresh_from_db()
    assert project.options == {"gold_rate": 0.1, "gold_pause_below": 0.7, "gold_min_answers": 4}
    refused = admin_client.post(
        url, {"action": "options", "gold_rate": "2", "agreement_threshold": "x"}, follow=True
    )
    assert "gold rate: enter a number from 0 to 1." in messages_of(refused)
    assert "agreement threshold: enter a number." in messages_of(refused)
    project.refresh_from_db()
    assert project.options["gold_rate"] == 0.1


def test_gold_and_assignment_forms(project, admin_client, annotator):
    items = items_with(project, 3, label="positive")
    url = f"/projects/{project.pk}/quality/"
    ids = f"{items[0].pk}-{items[1].pk}"
    marked = admin_client.post(url, {"action": "gold", "item_ids": ids, "reference": "negative"}, follow=True)
    assert "2 item(s) marked gold." in messages_of(marked)
    assert list(Item.objects.filter(is_gold=True).values_list("reference", flat=True)) == [
        "negative",
        "negative",
    ]
    # One candidate per item: a rate, an edit and a label task each, all gold now.
    assert ReviewTask.objects.filter(is_gold=True).count() == 2 * 3
    wrong = admin_client.post(
        url, {"action": "gold", "item_ids": str(items[2].pk), "reference": "neutral"}, follow=True
    )
    assert any("Unknown label 'neutral'" in m for m in messages_of(wrong))
    assert not Item.objects.get(pk=items[2].pk).is_gold
    missing = admin_client.post(url, {"action": "gold", "item_ids": "999999"}, follow=True)
    assert "No item 999999 in this project." in messages_of(missing)

    assigned = admin_client.post(
        url, {"action": "assign", "annotators": ["bob"], "item_ids": str(items[2].pk)}, follow=True
    )
    assert "1 assignment(s) added." in messages_of(assigned)
    assert list(ItemAssignment.objects.values_list("item_id", "user__username")) == [(items[2].pk, "bob")]
    nothing = admin_client.post(url, {"action": "assign", "annotators": ["bob"]}, follow=True)
    assert "Choose items: list their ids, or filter by split, status or text." in messages_of(nothing)
    admin_client.post(url, {"action": "unassign", "item_ids": str(items[2].pk)})
    assert not ItemAssignment.objects.exists()


def test_webhooks_page_adds_refuses_and_resends(project, admin_client, settings):
    url = f"/projects/{project.pk}/webhooks/"
    refused = admin_client.post(
        url, {"url": "http://127.0.0.1:8080/hook", "events": ["task.completed"]}, follow=True
    )
    assert any("private or loopback" in m for m in messages_of(refused))
    assert not Webhook.objects.exists()
    settings.SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE = True
    added = admin_client.post(
        url, {"url": "http://127.0.0.1:9/hook", "events": ["task.completed"]}, follow=True
    )
    hook = Webhook.objects.get()
    assert any(hook.secret in m for m in messages_of(added))  # a generated secret is shown once
    [delivery] = webhooks.webhook_event_emit(project=project, event="task.completed", data={"task": 1})
    page = admin_client.get(url).content.decode()
    assert "http://127.0.0.1:9/hook" in page and 'data-status="pending"' in page
    admin_client.post(url, {"action": "resend", "webhook": hook.pk, "delivery": delivery.pk})
    assert WebhookDelivery.objects.filter(webhook=hook).count() == 2
    admin_client.post(url, {"action": "toggle", "webhook": hook.pk})
    hook.refresh_from_db()
    assert hook.active is False


def test_quality_admin_pages_are_for_admins(project, client, annotator):
    client.force_login(annotator)
    for path in ("quality", "webhooks"):
        assert client.get(f"/projects/{project.pk}/{path}/").status_code == 403
        assert (
            client.post(
                f"/projects/{project.pk}/{path}/", {"action": "options", "gold_rate": "1"}
            ).status_code
            == 403
        )
    project.refresh_from_db()
    assert "gold_rate" not in project.options
